"""deploy.yml under ansible-runner, laid out the way AWX runs a job: a private data dir holding
the inventory, env/extravars, env/envvars and env/settings, the project checkout as the project
dir; the outcome is read back from the run's artifacts (the stats event's set_stats data)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN, REPO
from tests.integration.conftest import ComposeProject, free_port

DEMO = REPO / "examples" / "homeiq-demo"
PORT_VARS = ["HOMEIQ_INFLUXDB_PORT", "HOMEIQ_WEBSOCKET_INGESTION_PORT", "HOMEIQ_DATA_API_PORT",
             "HOMEIQ_ADMIN_API_PORT", "HOMEIQ_AI_PATTERN_SERVICE_PORT", "HOMEIQ_AI_AUTOMATION_SERVICE_PORT",
             "HOMEIQ_HEALTH_DASHBOARD_PORT"]
# What deploy.yml publishes per host with set_stats (aggregate) under `homeiq_deployments`.
OUTCOME_KEYS = {"deployment_id", "status", "report_path", "rollback"}


@pytest.fixture
def demo(engine, tmp_path):
    proj = ComposeProject(engine, tmp_path, src=DEMO)
    yield proj
    proj.cleanup()


class PrivateDataDir:
    """A private data dir as AWX prepares one for a job of the deploy job template."""

    def __init__(self, root, demo):
        self.root = Path(root)
        self.demo = demo
        self.ports = {v: free_port() for v in PORT_VARS}
        # The job's inventory: the local environment's, as an inventory sourced from the project.
        shutil.copytree(REPO / "inventories" / "local", self.root / "inventory")
        (self.root / "env").mkdir(parents=True)
        # The job's environment: AWX puts credentials and settings here; the local inventory reads
        # the demo's published ports from it (verify.yml, preflight.yml).
        envvars = {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
                   **{k: str(v) for k, v in self.ports.items()}}
        self._write("envvars", envvars)
        self._write("settings", {"job_timeout": 900, "idle_timeout": 600, "suppress_ansible_output": True})

    def _write(self, name, data):
        (self.root / "env" / name).write_text(yaml.safe_dump(data, sort_keys=False))

    def job(self, ident, release):
        """Extra vars of one job (a survey's answers land here), then `ansible-runner run`."""
        env_file = self.root.parent / f"{ident}.env"
        env_file.write_text(f"HOMEIQ_RELEASE={release}\n" + "".join(f"{k}={v}\n" for k, v in self.ports.items()))
        tmp = self.root.parent
        self._write("extravars", {
            "deploy_project_src": str(DEMO),
            "deploy_project_name": self.demo.name,
            "deploy_env_files": [str(env_file)],
            "deploy_lock_dir": str(tmp / "locks"),
            "deploy_wait_timeout": 120,
            "ledger_path": str(tmp / "ledger.sqlite3"),
            "ledger_environment": "runner-test",
            "verify_report_dir": str(tmp / "reports"),
            "pipeline_logs_dir": str(tmp / "logs"),
            # latency is not what this test is about, and the test machine may be busy
            "verify_max_latency_ms": 5000,
        })
        proc = subprocess.run([str(BIN / "ansible-runner"), "run", str(self.root), "-p", "deploy.yml",
                               "--project-dir", str(REPO), "--ident", ident],
                              capture_output=True, text=True, timeout=900, cwd=tmp,
                              env={"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home()),
                                   "LC_ALL": "C.UTF-8"}, check=False)
        return Artifacts(self.root / "artifacts" / ident, proc)


class Artifacts:
    """The artifacts of one run: rc, status, stdout, job_events/*.json."""

    def __init__(self, path, proc):
        self.path = path
        self.proc = proc

    @property
    def rc(self):
        return int((self.path / "rc").read_text())

    @property
    def status(self):
        return (self.path / "status").read_text().strip()

    @property
    def stdout(self):
        return (self.path / "stdout").read_text()

    def events(self):
        files = sorted(self.path.glob("job_events/*.json"), key=lambda p: int(p.name.split("-", 1)[0]))
        return [json.loads(f.read_text()) for f in files]

    def stats(self):
        """The set_stats data of the run (AWX stores it as the job's artifacts)."""
        found = [e for e in self.events() if e.get("event") == "playbook_on_stats"]
        assert len(found) == 1, (len(found), self.stdout[-3000:])
        return found[0]["event_data"].get("artifact_data") or {}

    def explain(self):
        return f"rc={self.proc.returncode}\n{self.proc.stdout[-2000:]}{self.proc.stderr[-2000:]}\n" + (
            self.stdout[-6000:] if (self.path / "stdout").exists() else "")


def test_deploy_through_ansible_runner_publishes_its_outcome(demo, tmp_path):
    pdd = PrivateDataDir(tmp_path / "pdd", demo)

    # A good release: the job succeeds and its artifacts carry the deployment's outcome.
    run = pdd.job("deploy-a", "a")
    assert run.proc.returncode == 0 and run.rc == 0 and run.status == "successful", run.explain()
    outcome = run.stats()["homeiq_deployments"]
    assert set(outcome) == {"localhost"}, outcome
    first = outcome["localhost"]
    assert OUTCOME_KEYS <= set(first), first
    assert first["status"] == "success" and first["rollback"] is None, first
    containers = demo.containers()
    assert len(containers) == 7 and {c[2] for c in containers.values()} == {"running"}
    assert {c[3]["io.homeiq.deployment-id"] for c in containers.values()} == {first["deployment_id"]}
    # The rollout as a whole: one host, so the rollout id is the host's deployment id.
    rollout = run.stats()["homeiq_rollout"]
    assert rollout["deployment_id"] == first["deployment_id"] and rollout["status"] == "success", rollout
    assert rollout["updated"] + rollout["unchanged"] == ["localhost"] and not rollout["failed"], rollout
    report = json.loads(Path(first["report_path"]).read_text())
    assert report["overall_status"] == "pass", report["summary"]
    # The runner's own record of the job: every event has its host and play, the stdout its recap.
    assert "PLAY RECAP" in run.stdout and "localhost" in run.stdout
    assert any(e.get("event") == "runner_on_ok" and e["event_data"].get("host") == "localhost" for e in run.events())

    # A release whose build fails: the job fails, the artifacts still say what happened, and
    # the running release is untouched (nothing to roll back).
    run = pdd.job("deploy-buildfail", "buildfail")
    assert run.proc.returncode != 0 and run.rc != 0 and run.status == "failed", run.explain()
    failed = run.stats()["homeiq_deployments"]["localhost"]
    assert OUTCOME_KEYS <= set(failed), failed
    assert failed["status"] == "failed" and failed["rollback"] is None, failed
    assert failed["deployment_id"] and failed["deployment_id"] != first["deployment_id"]
    rollout = run.stats()["homeiq_rollout"]
    assert rollout["status"] == "completed_with_failures" and rollout["failed"] == {"localhost": "failed"}, rollout
    assert demo.containers() == containers
