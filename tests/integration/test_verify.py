"""verify.yml and the verify role through real ansible-playbook runs: the local inventory's
checks against a throw-away copy of the demo stack (releases a, routebug and unhealthy), and the
nginx checks against an nginx the test starts with the runbook's variable-plus-URI proxy_pass."""
from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def run_verify(playbook, demo, tmp_path, check=False, verbosity=0, env=None, more=None):
    """verify.yml with the local inventory, pointed at the test's own copy of the demo stack."""
    ports = {var: str(demo.ports[svc]) for svc, var in demostack.PORT_VARS.items()}
    extra = {"deploy_project_name": demo.name, "verify_report_dir": str(tmp_path / "reports"),
             "verify_retries": 2, "verify_retry_delay": 1, "verify_deadline": 90,
             # latency is not what these tests are about, and the test machine may be busy
             "verify_max_latency_ms": 5000}
    extra.update(more or {})
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
    assert res["result"]["msg"] == ("verify_services entry data-api needs a url or a port (probed on verify_host); "
                                    "fix inventories/<env>/group_vars/all/verify.yml")
    assert not run.by_action("health_probe")  # nothing ran


# ---- the catalogue's option paths through the real role, against a server the test starts -----

TOKEN = "tok-" + uuid.uuid4().hex
PAGE_OK = "<!DOCTYPE html><title>p</title><link rel='icon' href='data:,'><div id='app'></div>" \
          "<script>fetch('/health').then(function (r) { return r.json(); }).then(function (h) {" \
          " document.getElementById('app').innerHTML = '<b id=\\'status\\'>' + h.status + '</b>'; });</script>"
PAGE_BROKEN = "<!DOCTYPE html><title>p</title><div id='app'></div><script>console.error('synergies unavailable')</script>"


class Api:
    """A real HTTP server on loopback: /health, /ready, a token-protected /api/secure, and two pages."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/api/secure":
                    if self.headers.get("Authorization") != "Bearer " + TOKEN:
                        return self._send(401, '{"detail": "unauthorized"}')
                    return self._send(200, '{"ok": true}')
                routes = {"/health": '{"status": "healthy"}', "/ready": '{"ready": true}'}
                pages = {"/page": PAGE_OK, "/broken": PAGE_BROKEN}
                if self.path in routes:
                    return self._send(200, routes[self.path])
                if self.path in pages:
                    return self._send(200, pages[self.path], "text/html")
                return self._send(404, '{"detail": "not found"}')

            def _send(self, code, body, ctype="application/json"):
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.request_queue_size = 64
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.base = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def api():
    a = Api()
    yield a
    a.server.shutdown()
    a.server.server_close()


def api_inventory(tmp_path, api, **hostvars):
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "verify_project_name": "", "verify_report_dir": str(tmp_path / "reports"), "verify_retries": 0,
            "verify_max_latency_ms": 5000,
            "verify_services": [
                # a full URL and no port: this entry crashed the role's templating before
                {"name": "by-url", "url": api.base + "/health", "critical": True, "json_query": "status",
                 "json_equals": "healthy"},
                {"name": "by-port-and-path", "port": api.port, "path": "/ready", "critical": True, "json_query": "ready"},
            ],
            "verify_functional_checks": [
                {"name": "secure with token", "port": api.port, "path": "/api/secure", "critical": True,
                 "headers": {"Authorization": "Bearer " + TOKEN}, "json_query": "ok"},
            ],
            "verify_auth_checks": [{"name": "api", "url": api.base, "protected": ["/api/secure"], "public": ["/health"]}]}
    host.update(hostvars)
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"homeiq": {"hosts": {"localhost": host}}}))
    return inv


def test_url_port_path_headers_and_a_browser_check_through_the_role(api, playbook, tmp_path):
    inv = api_inventory(tmp_path, api, verify_browser_checks=[
        {"name": "status page", "port": api.port, "path": "/page", "wait_for": "#status", "timeout": 60}])
    run = playbook(VERIFY, inventory=inv, check=True)
    assert run.rc == 0, run.output[-3000:]
    assert facts(run)["verify_status"] == "pass"
    assert not (tmp_path / "reports").exists()
    run = playbook(VERIFY, inventory=inv, verbosity=3, env={"ANSIBLE_INJECT_INVOCATION": "1"})
    assert run.rc == 0, run.output[-3000:]
    assert TOKEN not in run.output  # the header's token is never printed, even at -vvv with invocations
    f = facts(run)
    assert f["verify_status"] == "pass" and f["verify_failures"] == []
    # 2 services, 1 functional check, 2 auth checks, 1 page
    assert (f["verify_passed_count"], f["verify_failed_count"]) == (6, 0)
    report = Path(run.task(ROLE + "Name this verification and its reports")["result"]["ansible_facts"]["verify_report_path"])
    urls = {s["name"]: s["url"] for s in json.loads(report.read_text())["services"]}
    assert urls == {"by-url": api.base + "/health", "by-port-and-path": api.base + "/ready",
                    "secure with token": api.base + "/api/secure", "api /api/secure without token": api.base + "/api/secure",
                    "api /health public": api.base + "/health"}
    summary = json.loads(report.with_name(report.stem + ".summary.json").read_text())
    [page] = summary["browser"]
    assert page["name"] == "status page" and page["ok"] is True and page["element_found"] is True
    assert page["url"] == api.base + "/page"
    browser = run.task(ROLE + "Load the pages in a browser, as a visitor would")
    assert browser["result"]["results"][0]["msg"].startswith("browser check of %s/page passed in " % api.base)


def test_a_failing_browser_check_fails_the_verification(api, playbook, tmp_path):
    inv = api_inventory(tmp_path, api, verify_browser_checks=[
        {"name": "synergies page", "url": api.base + "/broken", "wait_for": "#app", "timeout": 60},
        {"name": "optional page", "port": api.port, "path": "/nothing", "critical": False, "timeout": 60}])
    run = playbook(VERIFY, inventory=inv)
    assert run.rc != 0
    f = facts(run)
    assert f["verify_status"] == "fail"
    assert f["verify_failed_services"] == ["synergies page", "optional page"]
    assert f["verify_critical_failed_services"] == ["synergies page"]
    msg = run.task(ROLE + "Fail when the verification failed")["result"]["msg"]
    assert ("synergies page: browser check of %s/broken failed: 1 console error: console.error: synergies unavailable "
            "(%s/broken:1)" % (api.base, api.base)) in msg
    assert "optional page: browser check of %s/nothing failed: 1 failed request: %s/nothing HTTP 404" % (api.base, api.base) in msg
    assert [x["check"] for x in f["verify_failures"]] == ["browser", "browser"]


def test_a_bad_browser_entry_names_itself(api, playbook, tmp_path):
    inv = api_inventory(tmp_path, api, verify_browser_checks=[{"name": "dash", "path": "/"}])
    run = playbook(VERIFY, inventory=inv)
    assert run.rc != 0
    assert run.task(ROLE + "Check the catalogue entries")["result"]["msg"] == (
        "verify_browser_checks entry dash needs a url or a port (probed on verify_host); "
        "fix inventories/<env>/group_vars/all/verify.yml")


# ---- a stack: the containers of every compose project are judged ------------------------------

def test_every_project_of_a_stack_is_judged(api, playbook, tmp_path):
    client = docker.from_env()
    stack = "vs" + uuid.uuid4().hex[:8]
    core, frontends = stack + "-core-platform", stack + "-frontends"
    containers = []
    try:
        for project, service in ((core, "data-api"), (frontends, "health-dashboard")):
            containers.append(client.containers.run(
                "homeiq/base:bookworm", ["sleep", "300"], name="%s-%s-1" % (project, service), detach=True,
                labels={"com.docker.compose.project": project, "com.docker.compose.service": service}))
        empty = stack + "-pattern-analysis"  # a project of the stack without containers
        inv = api_inventory(tmp_path, api, deploy_project_name=stack, verify_project_name=stack,
                            deploy_projects=[{"name": core}, {"name": frontends}])
        run = playbook(VERIFY, inventory=inv)
        assert run.rc == 0, run.output[-3000:]
        probe = run.task(ROLE + "Probe the containers, services, functional checks, proxied locations and auth")["result"]
        judged = {s["name"]: s["status"] for s in probe["services"] if s["url"] is None}
        assert judged == {core + "-data-api-1": "healthy", frontends + "-health-dashboard-1": "healthy"}
        inv = api_inventory(tmp_path, api, deploy_project_name=stack, verify_project_name=stack,
                            deploy_projects=[{"name": core}, {"name": empty}, {"name": frontends}])
        run = playbook(VERIFY, inventory=inv)
        assert run.rc != 0
        f = facts(run)
        assert f["verify_critical_failed_services"] == ["compose project %s" % empty]
        msg = run.task(ROLE + "Fail when the verification failed")["result"]["msg"]
        assert "compose project %s: no containers of compose project %s" % (empty, empty) in msg
    finally:
        for ctr in containers:
            ctr.remove(force=True)


# ---- the demo's dashboard in a browser -----------------------------------------------------

def test_the_demo_dashboard_loads_in_a_browser(demo, playbook, tmp_path):
    page = {"name": "health-dashboard page", "port": demo.ports["health-dashboard"], "path": "/",
            # a row the page adds once /api/v1/real-time-metrics answered through its nginx
            "wait_for": "#metrics td", "timeout": 60}
    run = run_verify(playbook, demo, tmp_path, more={"verify_browser_checks": [page]})
    assert run.rc == 0, run.output[-3000:]
    f = facts(run)
    assert f["verify_status"] == "pass"
    assert (f["verify_passed_count"], f["verify_failed_count"]) == (30, 0)
    result = run.task(ROLE + "Load the pages in a browser, as a visitor would")["result"]["results"][0]
    assert result["ok"] is True and result["element_found"] is True and result["status_code"] == 200
    assert result["console_errors"] == [] and result["failed_requests"] == []
