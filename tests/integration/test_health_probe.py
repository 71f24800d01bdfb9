"""health_probe through real ansible-playbook runs against real HTTP servers on 127.0.0.1
(healthy, slow, failing, redirecting, non-JSON, oversized, refusing, hanging, flaky and
token-protected endpoints) and real containers on the local engine."""
from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import docker
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "probe"))
import httpfixtures as hf  # noqa: E402

BASE_IMAGE = "homeiq/base:bookworm"


@pytest.fixture(scope="module")
def server():
    fx = hf.Fixture()
    yield fx
    fx.close()


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    return path


@pytest.fixture
def probe(playbook, tmp_path, inventory):
    """Runs health_probe with `args`; returns (run, task result)."""
    def _run(args, check=False, env=None, verbosity=0):
        play = tmp_path / f"play-{uuid.uuid4().hex[:6]}.yml"
        play.write_text(yaml.safe_dump([{"name": "probe", "hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "health_probe", "homeiq.deploy.health_probe": args, "register": "health"}]}], sort_keys=False))
        run = playbook(play, inventory=inventory, check=check, env=env, verbosity=verbosity)
        return run, run.task("health_probe")
    return _run


def by_name(result):
    return {s["name"]: s for s in result["services"]}


def test_each_kind_of_endpoint_is_judged(server, probe, tmp_path):
    refused = hf.refused_port()
    report = tmp_path / "reports" / "health.json"
    targets = [
        {"name": "data-api", "url": server.url("/health"), "critical": True, "json_query": "status",
         "json_equals": "healthy"},
        {"name": "checks", "url": server.url("/health"), "json_query": "checks.influxdb == 'ok' && checks.sqlite == 'ok'"},
        {"name": "slow", "url": server.url("/slow?ms=900"), "max_latency_ms": 500},
        {"name": "slow-but-allowed", "url": server.url("/slow?ms=300"), "max_latency_ms": 2000},
        {"name": "failing", "url": server.url("/fail")},
        {"name": "failing-expected", "url": server.url("/fail"), "expected_status": [500, 503]},
        {"name": "redirect", "url": server.url("/redirect")},
        {"name": "redirect-followed", "url": server.url("/redirect"), "follow_redirects": True},
        {"name": "text", "url": server.url("/text"), "json_query": "status"},
        {"name": "text-contains", "url": server.url("/text"), "body_contains": "service up"},
        {"name": "banner", "url": server.url("/banner"), "json_query": "status"},
        {"name": "degraded", "url": server.url("/degraded"), "json_query": "status", "json_equals": "healthy"},
        {"name": "oversized", "url": server.url("/big?mb=5")},
        {"name": "oversized-json", "url": server.url("/big?mb=5"), "json_query": "status"},
        {"name": "refusing", "url": "http://127.0.0.1:%d/health" % refused},
        {"name": "hanging", "url": server.url("/hang?s=20")},
        {"name": "flaky", "url": server.url("/flaky/%s?fail=2" % uuid.uuid4().hex)},
        {"name": "post", "url": server.url("/echo"), "method": "POST", "body": {"ping": 1},
         "json_query": "method", "json_equals": "POST"},
    ]
    run, res = probe({"targets": targets, "retries": 2, "retry_delay": 0.3, "timeout": 2, "fail_on": "never",
                      "report_path": str(report)})
    assert res["status"] == "ok", run.output[-3000:]
    r = res["result"]
    s = by_name(r)
    healthy = {n for n, v in s.items() if v["status"] == "healthy"}
    assert healthy == {"data-api", "checks", "slow-but-allowed", "failing-expected", "redirect-followed",
                       "text-contains", "oversized", "flaky", "post"}
    assert s["slow"]["status"] == "unhealthy" and "more than max_latency_ms 500" in s["slow"]["error"]
    assert s["failing"]["error"] == "status 500, expected 200" and s["failing"]["status_code"] == 500
    assert s["redirect"]["error"] == "status 302, expected 200 (redirect to /ok)"
    assert s["text"]["error"].startswith("response is not JSON")
    assert s["banner"]["error"].startswith("response is not JSON (starts with 'HomeIQ Health Check")
    assert s["degraded"]["error"] == 'json_query status gave "degraded", expected "healthy"'
    assert "larger than the 1048576 bytes read" in s["oversized-json"]["error"]
    assert s["refusing"]["status"] == "error" and s["refusing"]["error"] == "connection refused"
    assert s["refusing"]["status_code"] is None and s["refusing"]["attempts"] == 3
    assert s["hanging"]["status"] == "error" and s["hanging"]["error"] == "timed out after 2s"
    assert s["flaky"]["attempts"] == 3 and s["data-api"]["attempts"] == 1
    assert r["overall_status"] == "degraded"
    assert r["summary"] == {"total": 18, "passed": 9, "failed": 9, "critical_passed": 1, "critical_failed": 0}
    # the report file is JSON and nothing else, and is what the module returned
    text = report.read_text()
    data = json.loads(text)
    assert list(data) == ["timestamp", "overall_status", "summary", "services"]
    assert data["services"] == r["services"] and data["timestamp"] == r["timestamp"]
    assert [p.name for p in report.parent.iterdir()] == ["health.json"]
    assert res["result"]["changed"] is False


def test_a_failing_critical_service_fails_the_task_naming_it_and_the_report(server, probe, tmp_path):
    report = tmp_path / "health.json"
    targets = [
        {"name": "influxdb", "url": "http://127.0.0.1:%d/health" % hf.refused_port(), "critical": True},
        {"name": "data-api", "url": server.url("/health"), "critical": True},
        {"name": "weather-api", "url": server.url("/fail")},
    ]
    run, res = probe({"targets": targets, "retries": 0, "report_path": str(report)})
    assert res["status"] == "failed" and run.rc != 0
    msg = res["result"]["msg"]
    assert msg.startswith("health fail: 2 of 3 services unhealthy: influxdb (critical): connection refused; "
                          "weather-api: status 500, expected 200")
    assert msg.endswith("report in %s" % report)
    assert res["result"]["critical_failed_services"] == ["influxdb"]
    assert json.loads(report.read_text())["overall_status"] == "fail"


def test_fail_on_decides_what_fails(server, probe):
    targets = [{"name": "core", "url": server.url("/health"), "critical": True},
               {"name": "optional", "url": server.url("/fail")}]
    res = probe({"targets": targets, "retries": 0})[1]
    assert res["status"] == "ok" and res["result"]["overall_status"] == "degraded"
    res = probe({"targets": targets, "retries": 0, "fail_on": "any"})[1]
    assert res["status"] == "failed" and res["result"]["msg"].startswith("health degraded: 1 of 2")


def test_critical_only_probes_only_critical_targets(server, probe):
    marker = uuid.uuid4().hex
    targets = [{"name": "core", "url": server.url("/health?c=" + marker), "critical": True},
               {"name": "optional", "url": server.url("/health?o=" + marker)}]
    res = probe({"targets": targets, "critical_only": True})[1]
    assert [s["name"] for s in res["result"]["services"]] == ["core"]
    seen = [req[1] for req in server.state.requests if marker in req[1]]
    assert seen == ["/health?c=" + marker]


def test_headers_never_appear_in_output(server, probe, tmp_path):
    report = tmp_path / "health.json"
    targets = [{"name": "admin-api", "url": server.url("/auth"), "critical": True,
                "headers": {"Authorization": hf.TOKEN, "X-Api-Key": "k3y-" + hf.TOKEN[-8:]}},
               {"name": "admin-api-no-token", "url": server.url("/auth"), "expected_status": [401]}]
    run, res = probe({"targets": targets, "report_path": str(report)}, env={"ANSIBLE_INJECT_INVOCATION": "1"},
                     verbosity=3)
    assert res["status"] == "ok"
    assert by_name(res["result"])["admin-api"]["status"] == "healthy"  # the token was sent
    assert any(req[2].get("Authorization") == hf.TOKEN for req in server.state.requests if req[1] == "/auth")
    secret_bits = [hf.TOKEN, hf.TOKEN.split()[1], "k3y-"]
    everything = run.output + json.dumps(run.results) + report.read_text()
    for bit in secret_bits:
        assert bit not in everything
    # the invocation is in the result and shows the headers masked, the rest intact
    args = res["result"]["invocation"]["module_args"]
    assert args["targets"][0]["headers"] == {"Authorization": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER",
                                             "X-Api-Key": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"} or \
        args["targets"][0]["headers"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert args["targets"][0]["url"] == server.url("/auth")


def test_check_mode_probes_but_writes_no_report(server, probe, tmp_path):
    report = tmp_path / "out" / "health.json"
    args = {"targets": [{"name": "data-api", "url": server.url("/health"), "critical": True}],
            "report_path": str(report)}
    for check, exists in ((True, False), (False, True), (True, True), (False, True)):
        before = report.read_text() if report.exists() else None
        res = probe(args, check=check)[1]
        assert res["status"] == "ok" and res["result"]["changed"] is False
        assert res["result"]["overall_status"] == "pass"
        assert res["result"]["report_written"] is (not check)
        assert report.exists() is exists
        if check and before is not None:
            assert report.read_text() == before  # check mode left the file alone


def test_concurrency_is_bounded_by_the_option(server, probe):
    key = uuid.uuid4().hex
    targets = [{"name": "svc%02d" % i, "url": server.url("/slow?ms=400&k=%s&i=%d" % (key, i))} for i in range(24)]
    res = probe({"targets": targets, "concurrency": 8, "fail_on": "any"})[1]
    assert res["status"] == "ok"
    assert server.state.max_in_flight_by_key[key] == 8


def test_deadline_cuts_a_hanging_probe(server, probe):
    targets = [{"name": "hanging", "url": server.url("/hang?s=30"), "critical": True},
               {"name": "fine", "url": server.url("/health")}]
    started = time.monotonic()
    res = probe({"targets": targets, "timeout": 20, "deadline": 2, "retries": 5, "fail_on": "never"})[1]
    assert time.monotonic() - started < 15  # well before the 20 s request timeout
    s = by_name(res["result"])
    assert s["hanging"]["status"] == "error" and s["hanging"]["attempts"] == 1
    assert s["hanging"]["error"] == "timed out after 2s (deadline of 2s reached)"
    assert s["fine"]["status"] == "healthy"
    assert res["result"]["overall_status"] == "fail"


def test_bad_input_is_one_line(probe):
    res = probe({"targets": [{"name": "a", "url": "localhost:8006/health"}]})[1]
    assert res["status"] == "failed"
    assert res["result"]["msg"] == "target a: url 'localhost:8006/health' is not an http(s) URL"


# ---- containers ---------------------------------------------------------------------------------

@pytest.fixture
def containers():
    client = docker.from_env()
    made = []

    def start(name, health_cmd=None, labels=None, run=True):
        kw = {"name": name, "command": ["sleep", "300"], "labels": labels or {}, "detach": True}
        if health_cmd:
            kw["healthcheck"] = {"test": ["CMD-SHELL", health_cmd], "interval": 500_000_000, "timeout": 1_000_000_000,
                                 "retries": 1, "start_period": 0}
        ctr = client.containers.create(BASE_IMAGE, **kw)
        made.append(ctr)
        if run:
            ctr.start()
        return ctr
    yield start
    for ctr in made:
        try:
            ctr.remove(force=True)
        except docker.errors.APIError:
            pass


def test_container_state_counts_and_unhealthy_is_not_running(server, probe, containers):
    uid = uuid.uuid4().hex[:8]
    containers("probe-healthy-" + uid, "true")
    containers("probe-unhealthy-" + uid, "false")
    containers("probe-plain-" + uid)
    containers("probe-created-" + uid, run=False)
    compose_labels = {"com.docker.compose.service": "svc-" + uid, "com.docker.compose.project": "proj" + uid}
    containers("proj-svc-1-" + uid, labels=compose_labels)
    ok = server.url("/health")
    targets = [
        {"name": "healthy", "url": ok, "container": "probe-healthy-" + uid, "critical": True},
        {"name": "unhealthy", "url": ok, "container": "probe-unhealthy-" + uid},
        {"name": "no-healthcheck", "url": ok, "container": "probe-plain-" + uid},
        {"name": "not-started", "url": ok, "container": "probe-created-" + uid},
        {"name": "missing", "url": ok, "container": "probe-missing-" + uid},
        {"name": "compose-service", "url": ok, "container": "svc-" + uid},
    ]
    res = probe({"targets": targets, "retries": 8, "retry_delay": 0.5, "fail_on": "never"})[1]
    s = by_name(res["result"])
    assert (s["healthy"]["status"], s["healthy"]["container_status"]) == ("healthy", "running (healthy)")
    assert (s["unhealthy"]["status"], s["unhealthy"]["container_status"]) == ("unhealthy", "running (unhealthy)")
    assert s["unhealthy"]["error"] == "container probe-unhealthy-%s is running (unhealthy)" % uid
    assert s["unhealthy"]["status_code"] == 200  # the HTTP answer alone would have passed
    assert (s["no-healthcheck"]["status"], s["no-healthcheck"]["container_status"]) == ("healthy", "running")
    assert (s["not-started"]["status"], s["not-started"]["container_status"]) == ("unhealthy", "created")
    assert (s["missing"]["status"], s["missing"]["container_status"]) == ("unhealthy", "not found")
    assert (s["compose-service"]["status"], s["compose-service"]["container_status"]) == ("healthy", "running")
    assert res["result"]["overall_status"] == "degraded"
