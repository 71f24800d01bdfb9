"""verify.yml and the verify role through real ansible-playbook runs: the local inventory's
checks against a throw-away copy of the demo stack (releases a, routebug and unhealthy), and the
nginx checks against an nginx the test starts with the runbook's variable-plus-URI proxy_pass."""
from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import docker
import pytest
import requests
import yaml

sys.path.insert(0, str(Path(__file__).parent / "probe"))
import demostack  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
VERIFY = REPO / "verify.yml"
ROLE = "homeiq.deploy.verify : "


@pytest.fixture(scope="module")
def demo():
    project = demostack.DemoProject("verify")
    try:
        project.up(release="a")
        yield project
    finally:
        project.down()


def run_verify(playbook, demo, tmp_path, check=False, verbosity=0, env=None):
    """verify.yml with the local inventory, pointed at the test's own copy of the demo stack."""
    ports = {var: str(demo.ports[svc]) for svc, var in demostack.PORT_VARS.items()}
    extra = {"deploy_project_name": demo.name, "verify_report_dir": str(tmp_path / "reports"),
             "verify_retries": 2, "verify_retry_delay": 1, "verify_deadline": 90,
             # latency is not what these tests are about, and the test machine may be busy
             "verify_max_latency_ms": 5000}
    run = playbook(VERIFY, extra_vars=extra, check=check, verbosity=verbosity, env=dict(ports, **(env or {})))
    return run


def facts(run):
    return run.task(ROLE + "Sum up the verification")["result"]["ansible_facts"]


def test_release_a_passes_every_check(demo, playbook, tmp_path):
    token = demostack.demo_env()["ADMIN_API_TOKEN"]
    # check mode: every check runs, nothing is written
    run = run_verify(playbook, demo, tmp_path, check=True)
    assert run.rc == 0, run.output[-3000:]
    assert facts(run)["verify_status"] == "pass"
    assert not (tmp_path / "reports").exists()
    # for real, with invocations in the results and -vvv: the admin-api token stays out of the output
    run = run_verify(playbook, demo, tmp_path, verbosity=3, env={"ANSIBLE_INJECT_INVOCATION": "1"})
    assert run.rc == 0, run.output[-3000:]
    assert token not in run.output
    f = facts(run)
    assert f["verify_status"] == "pass" and f["verify_failed_services"] == []
    # 7 services, 7 containers, 5 functional checks, 4 dashboard locations, 4 auth checks, routes, nginx
    assert (f["verify_passed_count"], f["verify_failed_count"]) == (29, 0)
    report = Path(run.task(ROLE + "Name this verification and its reports")["result"]["ansible_facts"]["verify_report_path"])
    data = json.loads(report.read_text())
    assert list(data) == ["timestamp", "overall_status", "summary", "services"]
    names = {s["name"] for s in data["services"]}
    assert {"data-api", "events", "admin-api /api/v1/services without token", "admin-api /health public",
            "synergies stats via dashboard", demo.container("influxdb")} <= names
    summary = json.loads(report.with_name(report.stem + ".summary.json").read_text())
    assert summary["status"] == "pass" and summary["routes"][0]["name"] == "ai-pattern-service"
    assert summary["nginx"][0]["config_test_ok"] is True
    assert all(r["status"] != "failed" for r in run.results)
    assert not any(r["result"].get("changed") for r in run.results)


def test_routebug_release_fails_naming_the_services_and_the_report(demo, playbook, tmp_path):
    demo.up("ai-pattern-service", release="routebug")
    try:
        run = run_verify(playbook, demo, tmp_path)
        assert run.rc != 0
        failed = run.task(ROLE + "Fail when the verification failed")
        msg = failed["result"]["msg"]
        f = facts(run)
        assert f["verify_status"] == "fail"
        # the route check, the direct and proxied stats checks, and the dashboard location all fail
        assert set(f["verify_failed_services"]) == {"ai-pattern-service", "synergies stats",
                                                    "synergies stats via ai-automation-service",
                                                    "synergies stats via dashboard"}
        assert set(f["verify_critical_failed_services"]) == {"ai-pattern-service", "synergies stats via dashboard"}
        assert msg.startswith("verification fail on localhost: failing ")
        assert "ai-pattern-service: 1 unreachable route in container %s" % demo.container("ai-pattern-service") in msg
        assert "GET /api/v1/synergies/stats (shadowed by /api/v1/synergies/{synergy_id})" in msg
        assert "synergies stats: status 404, expected 200" in msg
        report = str(tmp_path / "reports")
        assert "; report %s/verify-" % report in msg and ".summary.json" in msg
    finally:
        demo.up("ai-pattern-service", release="a")


def test_unhealthy_release_fails_naming_data_api(demo, playbook, tmp_path):
    demo.up("data-api", release="unhealthy", wait=False)
    try:
        run = run_verify(playbook, demo, tmp_path)
        assert run.rc != 0
        f = facts(run)
        assert f["verify_status"] == "fail"
        assert "data-api" in f["verify_critical_failed_services"]
        msg = run.task(ROLE + "Fail when the verification failed")["result"]["msg"]
        assert "data-api: status 503, expected 200" in msg
    finally:
        demo.up("data-api", release="a")


# ---- nginx: the runbook's own recommended pattern, and a broken configuration -----------------

NGINX_CONF = """
user www-data;
worker_processes 1;
pid /run/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    server {
        listen 8080;
        # the runbook's pattern for optional services: a variable plus a URI
        location /weather/ {
            set $svc "http://127.0.0.1:9000";
            proxy_pass $svc/;
        }
        # a prefix replaced by a URI without a variable: /reports/x reaches /x
        location /reports/ {
            proxy_pass http://127.0.0.1:9000/;
        }
    }
}
"""


@pytest.fixture
def nginx_container(tmp_path):
    client = docker.from_env()
    site = tmp_path / "site"
    (site / "current").mkdir(parents=True)
    (site / "current" / "index.html").write_text('{"temperature": 21.5, "unit": "C"}')
    (site / "daily.json").write_text('{"days": 7}')
    (tmp_path / "nginx.conf").write_text(NGINX_CONF)
    name = "homeiq-verify-nginx-" + uuid.uuid4().hex[:8]
    ctr = client.containers.run(
        "homeiq/base:bookworm",
        ["sh", "-c", "cp /cfg/nginx.conf /etc/nginx/nginx.conf && (cd /site && python3 -m http.server 9000 --bind 127.0.0.1 &) "
                     "&& exec nginx -g 'daemon off;'"],
        name=name, detach=True, ports={"8080/tcp": ("127.0.0.1", None)},
        volumes={str(tmp_path / "nginx.conf"): {"bind": "/cfg/nginx.conf", "mode": "ro"},
                 str(site): {"bind": "/site", "mode": "ro"}})
    try:
        ctr.reload()
        port = int(ctr.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get("http://127.0.0.1:%d/reports/daily.json" % port, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        yield ctr, port
    finally:
        ctr.remove(force=True)


def nginx_inventory(tmp_path, container, port):
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"homeiq": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "verify_project_name": "", "verify_report_dir": str(tmp_path / "reports"), "verify_retries": 0,
        "verify_max_latency_ms": 5000,
        "verify_nginx_checks": [{
            "name": "edge-nginx", "container": container, "port": port,
            "locations": [
                {"name": "weather via edge", "path": "/weather/current/", "json_query": "temperature"},
                {"name": "reports via edge", "path": "/reports/daily.json", "json_query": "days == `7`"},
            ]}]}}}}))
    return inv


def test_nginx_variable_with_uri_is_flagged_and_its_location_reaches_the_root(nginx_container, playbook, tmp_path):
    ctr, port = nginx_container
    # the symptom: /weather/current/ is answered by the upstream's root, not by /current/
    assert "Directory listing for /" in requests.get("http://127.0.0.1:%d/weather/current/" % port, timeout=5).text
    run = playbook(VERIFY, inventory=nginx_inventory(tmp_path, ctr.name, port))
    assert run.rc != 0
    f = facts(run)
    assert set(f["verify_failed_services"]) == {"edge-nginx", "weather via edge"}
    msg = run.task(ROLE + "Fail when the verification failed")["result"]["msg"]
    assert "edge-nginx: proxy_pass $svc/ has a variable and a URI, so nginx sends every request to that one URI" in msg
    assert "weather via edge: response is not JSON" in msg
    assert "reports via edge" not in msg  # a URI without a variable is fine


def test_nginx_config_test_failure_is_reported(nginx_container, playbook, tmp_path):
    ctr, port = nginx_container
    ctr.exec_run(["sh", "-c", "sed -i 's/worker_processes 1;/worker_processes 1;\\nbogus_directive on;/' /etc/nginx/nginx.conf"])
    run = playbook(VERIFY, inventory=nginx_inventory(tmp_path, ctr.name, port))
    msg = run.task(ROLE + "Fail when the verification failed")["result"]["msg"]
    assert 'edge-nginx: nginx: [emerg] unknown directive "bogus_directive" in /etc/nginx/nginx.conf:4' in msg


def test_catalogue_entries_are_checked_before_anything_runs(playbook, tmp_path):
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"homeiq": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "verify_project_name": "",
        "verify_services": [{"name": "data-api", "path": "/health"}]}}}}))
    run = playbook(VERIFY, inventory=inv)
    assert run.rc != 0
    res = run.task(ROLE + "Check the catalogue entries")
    assert "verify_services entries need a name and a url or a port (data-api)" in res["result"]["msg"]
