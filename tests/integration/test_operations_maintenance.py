"""maintenance.yml on this machine against a real compose project on the engine: disk space,
image retention beyond the newest deployments, error lines of each service's recent logs, and the
ledger's weekly metrics; check -> real -> check -> real."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from tests.conftest import REPO
from tests.integration.conftest import write_play

BASE_IMAGE = "homeiq/base:bookworm"
API_TAGS = ["deploy-20260101-000001", "deploy-20260102-000002-ab12", "deploy-20260103-000003", "deploy-20260104-000004"]
WORKER_TAGS = ["deploy-20260103-000003", "deploy-20260104-000004"]


@pytest.fixture
def stack(engine, tmp_path):
    """A compose project whose images carry deployment tags (retagged base image, nothing built)
    and whose api service logs error lines."""
    name = "mt" + uuid.uuid4().hex[:8]
    base = engine.images.get(BASE_IMAGE)
    for repo, tags in ((f"{name}-api", API_TAGS + ["latest"]), (f"{name}-worker", WORKER_TAGS + ["latest"])):
        for tag in tags:
            base.tag(repo, tag)
    src = tmp_path / "project"
    src.mkdir()
    (src / "compose.yaml").write_text(yaml.safe_dump({"services": {
        "api": {"image": f"{name}-api:latest", "init": True, "command": [
            "sh", "-c", "echo 'INFO: started'; echo 'ERROR: database unreachable'; echo 'Traceback (most recent call last):';"
            " echo 'INFO: still serving'; exec sleep 600"]},
        "worker": {"image": f"{name}-worker:latest", "init": True,
                   "command": ["sh", "-c", "echo 'INFO: all good'; exec sleep 600"]},
    }}))
    compose = ["docker", "compose", "--project-directory", str(src), "-p", name]
    subprocess.run(compose + ["up", "-d"], check=True, capture_output=True)
    deadline = time.time() + 30
    while time.time() < deadline and "database unreachable" not in subprocess.run(
            compose + ["logs", "api"], capture_output=True, text=True, check=False).stdout:
        time.sleep(0.5)
    yield name, src
    subprocess.run(compose + ["down", "--timeout", "1"], capture_output=True, check=False)
    for image in engine.images.list():
        for ref in image.tags:
            if ref.startswith(f"{name}-"):
                engine.images.remove(ref)


def tags(engine, repo):
    return sorted(t.split(":", 1)[1] for i in engine.images.list(name=repo) for t in i.tags if t.startswith(repo + ":"))


def test_maintenance_reports_and_prunes(stack, engine, playbook, tmp_path):
    name, src = stack
    ledger = tmp_path / "ledger.sqlite3"
    # Two deployments in the ledger this week: one successful, one failed.
    records = [{"deployment_id": d, "status": s, "environment": "maint-test", "project": name, "host": "localhost",
                "path": str(ledger), "started_at": started, "finished_at": finished}
               for d, s, started, finished in (
                   ("deploy-a", "success", "-3d", "-3d+60s"), ("deploy-b", "failed", "-1d", "-1d+90s"))]
    now = time.time()

    def iso(spec):
        days, _sep, secs = spec.partition("+")
        t = now + int(days[:-1]) * 86400 + (int(secs[:-1]) if secs else 0)
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    play = write_play(tmp_path, [{"name": f"record {r['deployment_id']}", "homeiq.deploy.deploy_ledger": dict(
        r, started_at=iso(r["started_at"]), finished_at=iso(r["finished_at"]))} for r in records])
    assert playbook(play).rc == 0

    inv = tmp_path / "inventory.yml"
    report = tmp_path / "reports" / "maintenance.json"
    inv.write_text(yaml.safe_dump({"homeiq": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "maintenance_project_name": name, "maintenance_project_src": str(src),
        "maintenance_keep_deployments": 2, "maintenance_min_free_gb": 1,
        "maintenance_report_path": str(report),
        "ledger_path": str(ledger), "ledger_environment": "maint-test"}}}}))

    run = playbook(REPO / "maintenance.yml", inventory=inv, check=True)
    assert run.rc == 0, run.output
    would = run.task("Deployment tags the run would remove")
    assert would["result"]["changed"] is True
    assert sorted(would["result"]["msg"]) == [f"{name}-api:deploy-20260101-000001", f"{name}-api:deploy-20260102-000002-ab12"]
    assert tags(engine, f"{name}-api") == sorted(API_TAGS + ["latest"]) and not report.exists()

    run = playbook(REPO / "maintenance.yml", inventory=inv)
    assert run.rc == 0, run.output
    assert run.task("Remove the deployment tags beyond the newest deployments")["result"]["changed"] is True
    assert tags(engine, f"{name}-api") == ["deploy-20260103-000003", "deploy-20260104-000004", "latest"]
    assert tags(engine, f"{name}-worker") == sorted(WORKER_TAGS + ["latest"])
    assert engine.images.get(BASE_IMAGE)  # still tagged: the engine removed nothing in use

    found = json.loads(report.read_text())
    assert found["project"] == name and found["disk"]["result"] == "pass", found["disk"]
    assert sorted(found["images"]["removed"]) == [f"{name}-api:deploy-20260101-000001",
                                                  f"{name}-api:deploy-20260102-000002-ab12"]
    logs = {s["service"]: s for s in found["logs"]["services"]}
    assert logs["api"]["error_lines"] == 2, logs["api"]
    assert logs["api"]["lines"] == ["ERROR: database unreachable", "Traceback (most recent call last):"]
    assert logs["worker"]["error_lines"] == 0 and logs["worker"]["lines"] == []
    metrics = found["ledger"]
    assert metrics["total"] == 2 and metrics["successful"] == 1 and metrics["failed"] == 1, metrics
    summary = run.task("Summary")["result"]["msg"]
    assert any(line.startswith("logs api: 2 error lines in 24h, last: Traceback") for line in summary), summary
    assert any(line.startswith("ledger, last 7 days: 2 deployments, 1 successful, 1 failed") for line in summary)

    for check in (True, False):
        run = playbook(REPO / "maintenance.yml", inventory=inv, check=check)
        assert run.rc == 0 and "changed=0" in run.stdout, run.stdout[-3000:]
    assert tags(engine, f"{name}-api") == ["deploy-20260103-000003", "deploy-20260104-000004", "latest"]

    # Low disk: a warning by default, a failure when asked.
    run = playbook(REPO / "maintenance.yml", inventory=inv, extra_vars={"maintenance_min_free_gb": 10 ** 7})
    assert run.rc == 0, run.output
    assert json.loads(report.read_text())["disk"]["result"] == "warn"
    run = playbook(REPO / "maintenance.yml", inventory=inv,
                   extra_vars={"maintenance_min_free_gb": 10 ** 7, "maintenance_fail_on_low_disk": True})
    assert run.rc != 0 and "disk" in run.task("Disk space")["result"]["msg"], run.output[-3000:]
    assert "Traceback" not in run.output
