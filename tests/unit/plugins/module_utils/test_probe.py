"""health_probe's judging, overall status, retries, deadline and report writing."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _probe
from ansible_collections.homeiq.deploy.plugins.module_utils._probe import ProbeInputError, RequestFailed, Response


def target(**kw):
    raw = {"name": "svc", "url": "http://127.0.0.1:8006/health"}
    raw.update(kw)
    return _probe.build_targets([raw])[0]


def resp(code=200, ms=5, body=b'{"status": "healthy", "checks": {"db": "ok"}, "count": 0, "items": []}', **kw):
    return Response(code, ms, body, **kw)


# ---- judging -------------------------------------------------------------------------------

def test_healthy_answer():
    assert _probe.judge(target(), resp()) == ("healthy", None)


def test_unexpected_status_and_expected_alternatives():
    assert _probe.judge(target(), resp(503)) == ("unhealthy", "status 503, expected 200")
    assert _probe.judge(target(expected_status=[200, 204]), resp(204))[0] == "healthy"
    status, error = _probe.judge(target(), resp(302, location="/login"))
    assert error == "status 302, expected 200 (redirect to /login)"


def test_latency_over_the_limit():
    status, error = _probe.judge(target(max_latency_ms=500), resp(ms=731.4))
    assert status == "unhealthy" and error == "response took 731 ms, more than max_latency_ms 500"
    assert _probe.judge(target(max_latency_ms=500), resp(ms=500))[0] == "healthy"


@pytest.mark.parametrize("query, equals, healthy", [
    ("status", "healthy", True),
    ("status", "degraded", False),
    ("checks.db", "ok", True),
    ("status", None, True),          # truthy
    ("missing", None, False),        # null
    ("items", None, False),          # empty list is false in JMESPath
    ("count", None, True),           # 0 is true in JMESPath
    ("count", 0, True),
    ("length(items) == `0`", True, True),
    ("checks.db == 'ok' && status == 'healthy'", None, True),
])
def test_json_query(query, equals, healthy):
    t = target(json_query=query, json_equals=equals)
    status, error = _probe.judge(t, resp())
    assert (status == "healthy") is healthy, error


def test_json_query_on_a_body_that_is_not_json():
    # the runbook's health-check.sh --json printed a banner before its JSON
    body = b'HomeIQ Health Check\n{"status": "healthy"}'
    status, error = _probe.judge(target(json_query="status"), resp(body=body))
    assert status == "unhealthy" and error.startswith("response is not JSON (starts with 'HomeIQ Health Check")


def test_json_equals_mismatch_names_both_values():
    error = _probe.judge(target(json_query="status", json_equals="healthy"), resp(body=b'{"status": "degraded"}'))[1]
    assert error == 'json_query status gave "degraded", expected "healthy"'


def test_body_contains():
    assert _probe.judge(target(body_contains="checks"), resp())[0] == "healthy"
    assert _probe.judge(target(body_contains="HomeIQ"), resp())[1] == "body does not contain 'HomeIQ'"


def test_oversized_body_only_matters_with_assertions():
    big = resp(body=b"x" * 100, truncated=True)
    assert _probe.judge(target(), big)[0] == "healthy"
    status, error = _probe.judge(target(json_query="status"), big)
    assert status == "unhealthy" and "larger than the 100 bytes read" in error


def test_container_state_is_part_of_the_judgement():
    t = target(container="homeiq-data-api")
    assert _probe.judge(t, resp(), (True, "running (healthy)"))[0] == "healthy"
    status, error = _probe.judge(t, resp(), (False, "running (unhealthy)"))
    assert status == "unhealthy" and error == "container homeiq-data-api is running (unhealthy)"


def test_every_problem_is_listed():
    error = _probe.judge(target(json_query="status", json_equals="ok", container="c"), resp(500, ms=900),
                         (False, "exited"))[1]
    assert error.count(";") == 3


def test_no_answer_is_an_error():
    assert _probe.judge(target(), None) == ("error", None)


# ---- overall status and summary --------------------------------------------------------------

def svc(status, critical):
    return {"status": status, "critical": critical}


@pytest.mark.parametrize("services, expected", [
    ([svc("healthy", True), svc("healthy", False)], "pass"),
    ([svc("healthy", True), svc("unhealthy", False)], "degraded"),
    ([svc("healthy", True), svc("error", False)], "degraded"),
    ([svc("error", True), svc("healthy", False)], "fail"),
    ([svc("unhealthy", True), svc("unhealthy", False)], "fail"),
    ([], "pass"),
])
def test_overall(services, expected):
    assert _probe.overall(services) == expected


def test_summary_counts():
    services = [svc("healthy", True), svc("error", True), svc("healthy", False), svc("unhealthy", False)]
    assert _probe.summarize(services) == {"total": 4, "passed": 2, "failed": 2, "critical_passed": 1, "critical_failed": 1}


@pytest.mark.parametrize("overall, fail_on, fails", [
    ("pass", "critical", False), ("degraded", "critical", False), ("fail", "critical", True),
    ("pass", "any", False), ("degraded", "any", True), ("fail", "any", True),
    ("fail", "never", False),
])
def test_fail_on(overall, fail_on, fails):
    assert _probe.should_fail(overall, fail_on) is fails


# ---- input validation -------------------------------------------------------------------------

@pytest.mark.parametrize("raw, message", [
    ([{"name": "a", "url": "http://x/"}, {"name": "a", "url": "http://y/"}], "target name a is used twice"),
    ([{"name": "a", "url": "ftp://x/"}], "is not an http(s) URL"),
    ([{"name": "a", "url": "localhost:8006/health"}], "is not an http(s) URL"),
    ([{"name": "", "url": "http://x/"}], "targets[0] has no name"),
    ([{"name": "a", "url": "http://x/", "json_query": "status[?"}], "is not valid JMESPath"),
    ([{"name": "a", "url": "http://x/", "json_equals": "ok"}], "json_equals needs json_query"),
    ([{"name": "a", "url": "http://x/", "expected_status": [200, 700]}], "outside 100-599"),
    ([{"name": "a", "url": "http://x/", "max_latency_ms": 0}], "max_latency_ms must be positive"),
])
def test_bad_targets_are_refused_in_one_line(raw, message):
    with pytest.raises(ProbeInputError) as info:
        _probe.build_targets(raw)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_critical_only_keeps_critical_targets():
    targets = _probe.build_targets([{"name": "a", "url": "http://x/", "critical": True}, {"name": "b", "url": "http://x/"}],
                                   critical_only=True)
    assert [t.name for t in targets] == ["a"]


def test_url_password_is_masked():
    assert _probe.redact_url("http://admin:hunter2@host:8086/health") == "http://admin:***@host:8086/health"
    assert _probe.redact_url("http://host/health?x=1") == "http://host/health?x=1"


# ---- scheduling: retries, concurrency, deadline (an in-process stand-in for HTTP) --------------

class ScriptedHttp:
    """Answers from a script per target name: a list of Response or RequestFailed, last one repeats."""

    def __init__(self, script, delay=0.0):
        self.script = script
        self.delay = delay
        self.calls = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def request(self, t, timeout):
        with self.lock:
            n = sum(1 for c in self.calls if c[0] == t.name)
            self.calls.append((t.name, timeout, time.monotonic()))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            steps = self.script[t.name]
            step = steps[min(n, len(steps) - 1)]
            if isinstance(step, Exception):
                raise step
            return step
        finally:
            with self.lock:
                self.in_flight -= 1


class NoContainers:
    def state(self, name, completed_ok=False):
        raise AssertionError("no container was named")


def test_retries_until_healthy_and_counts_attempts():
    http = ScriptedHttp({"a": [resp(503), resp(503), resp(200)], "b": [resp(200)]})
    targets = _probe.build_targets([{"name": "a", "url": "http://x/"}, {"name": "b", "url": "http://y/"}])
    services = _probe.probe_all(targets, retries=3, retry_delay=0.01, http=http, containers=NoContainers())
    assert [(s["name"], s["status"], s["attempts"]) for s in services] == [("a", "healthy", 3), ("b", "healthy", 1)]


def test_gives_up_after_retries_with_the_last_error():
    http = ScriptedHttp({"a": [RequestFailed("connection refused", 0.001)]})
    targets = _probe.build_targets([{"name": "a", "url": "http://x/"}])
    services = _probe.probe_all(targets, retries=2, retry_delay=0.01, http=http, containers=NoContainers())
    assert services[0]["status"] == "error" and services[0]["attempts"] == 3
    assert services[0]["error"] == "connection refused" and services[0]["status_code"] is None


def test_concurrency_is_bounded_and_used():
    names = ["s%d" % i for i in range(20)]
    http = ScriptedHttp({n: [resp()] for n in names}, delay=0.05)
    targets = _probe.build_targets([{"name": n, "url": "http://x/"} for n in names])
    start = time.monotonic()
    _probe.probe_all(targets, concurrency=5, http=http, containers=NoContainers())
    assert http.max_in_flight == 5
    assert time.monotonic() - start < 20 * 0.05  # not one after another


def test_deadline_stops_retries_and_caps_the_request_timeout():
    http = ScriptedHttp({"a": [resp(503)], "b": [resp(200)]}, delay=0.02)
    targets = _probe.build_targets([{"name": "a", "url": "http://x/"}, {"name": "b", "url": "http://y/"}])
    start = time.monotonic()
    services = _probe.probe_all(targets, retries=100, retry_delay=0.1, timeout=10, deadline=0.5, http=http,
                                containers=NoContainers())
    assert time.monotonic() - start < 1.5
    a = services[0]
    assert a["status"] == "unhealthy" and 2 <= a["attempts"] <= 6
    assert a["error"].endswith("(deadline of 0.5s reached)")
    assert all(call[1] <= 0.5 for call in http.calls)
    assert services[1]["status"] == "healthy"


def test_targets_never_started_before_the_deadline_are_errors():
    http = ScriptedHttp({"slow": [resp()], "late": [resp()]}, delay=0.4)
    targets = _probe.build_targets([{"name": "slow", "url": "http://x/"}, {"name": "late", "url": "http://y/"}])
    services = _probe.probe_all(targets, concurrency=1, deadline=0.3, http=http, containers=NoContainers())
    late = services[1]
    assert late["status"] == "error" and late["attempts"] == 0
    assert late["error"] == "not probed: deadline of 0.3s reached"


def test_a_crashing_probe_does_not_lose_the_others():
    class Broken(ScriptedHttp):
        def request(self, t, timeout):
            if t.name == "a":
                raise KeyError("boom")
            return resp()
    targets = _probe.build_targets([{"name": "a", "url": "http://x/"}, {"name": "b", "url": "http://y/"}])
    services = _probe.probe_all(targets, retries=0, http=Broken({}), containers=NoContainers())
    assert services[0]["status"] == "error" and "probe failed" in services[0]["error"]
    assert services[1]["status"] == "healthy"


def test_container_is_checked_even_without_an_answer():
    class Ctr:
        def state(self, name, completed_ok=False):
            return False, "exited"
    http = ScriptedHttp({"a": [RequestFailed("connection refused", 0.001)]})
    targets = _probe.build_targets([{"name": "a", "url": "http://x/", "container": "homeiq-a"}])
    s = _probe.probe_all(targets, retries=0, http=http, containers=Ctr())[0]
    assert s["container_status"] == "exited"
    assert s["error"] == "connection refused; container homeiq-a is exited"


# ---- report -------------------------------------------------------------------------------------

REPORT_KEYS = ["timestamp", "overall_status", "summary", "services"]
SERVICE_KEYS = ["name", "url", "status", "status_code", "response_time_ms", "critical", "attempts", "error",
                "container_status"]


def test_report_shape_is_exactly_the_promised_one(tmp_path):
    http = ScriptedHttp({"a": [resp()], "b": [resp(500)]})
    params = {"targets": [{"name": "a", "url": "http://x/", "critical": True}, {"name": "b", "url": "http://y/"}],
              "retries": 0, "report_path": str(tmp_path / "deep" / "dir" / "health.json")}
    result, failure = _probe.run(params, http=http, containers=NoContainers())
    assert failure is None  # degraded does not fail with fail_on critical
    data = json.loads((tmp_path / "deep" / "dir" / "health.json").read_text())
    assert list(data) == REPORT_KEYS
    assert all(list(s) == SERVICE_KEYS for s in data["services"])
    assert data["overall_status"] == "degraded"
    assert result["report_written"] is True and result["failed_services"] == ["b"]
    assert [p.name for p in (tmp_path / "deep" / "dir").iterdir()] == ["health.json"]  # no temporary files left
    assert oct(os.stat(tmp_path / "deep" / "dir" / "health.json").st_mode & 0o777) == "0o644"


def test_check_mode_does_not_write_the_report(tmp_path):
    http = ScriptedHttp({"a": [resp()]})
    params = {"targets": [{"name": "a", "url": "http://x/"}], "report_path": str(tmp_path / "r.json")}
    result = _probe.run(params, check_mode=True, http=http, containers=NoContainers())[0]
    assert not (tmp_path / "r.json").exists() and result["report_written"] is False
    assert result["overall_status"] == "pass"


def test_failure_message_names_services_and_report(tmp_path):
    http = ScriptedHttp({"a": [resp(500)], "b": [RequestFailed("connection refused", 0.001)]})
    params = {"targets": [{"name": "a", "url": "http://x/", "critical": True}, {"name": "b", "url": "http://y/"}],
              "retries": 0, "report_path": str(tmp_path / "r.json")}
    result, failure = _probe.run(params, http=http, containers=NoContainers())
    assert failure == ("health fail: 2 of 2 services unhealthy: a (critical): status 500, expected 200; "
                       "b: connection refused; report in %s" % (tmp_path / "r.json"))
    assert result["critical_failed_services"] == ["a"]


def test_unwritable_report_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ProbeInputError, match="cannot write the report to"):
        _probe.write_report(str(tmp_path / "file" / "r.json"), {})


@pytest.mark.parametrize("params, message", [
    ({"concurrency": 0}, "concurrency must be at least 1"),
    ({"retries": -1}, "retries must be at least 0"),
    ({"timeout": 0}, "timeout must be a positive number"),
    ({"deadline": -5}, "deadline must be a positive number"),
    ({"retry_delay": -1}, "retry_delay must not be negative"),
])
def test_bad_numbers_are_refused(params, message):
    with pytest.raises(ProbeInputError, match=message):
        _probe.run(dict(params, targets=[{"name": "a", "url": "http://x/"}]), http=ScriptedHttp({}),
                   containers=NoContainers())


class ProjectContainers:
    """A stand-in engine: container name -> (ok when completed_ok is false, ok when true, status text)."""

    def __init__(self, states, fail_listing=None):
        self.states = states
        self.fail_listing = fail_listing

    def project_containers(self, project):
        if self.fail_listing:
            raise LookupError(self.fail_listing)
        return sorted(self.states)

    def state(self, name, completed_ok=False):
        plain, completed, text = self.states[name]
        return (completed if completed_ok else plain), text


def test_compose_project_containers_are_judged_by_state():
    engine = ProjectContainers({
        "demo-data-api-1": (True, True, "running (healthy)"),
        "demo-init-1": (False, True, "exited (0)"),
        "demo-worker-1": (False, False, "running (unhealthy)"),
    })
    params = {"targets": [{"name": "data-api", "url": "http://x/", "critical": True}], "compose_project": "demo",
              "retries": 0}
    result, failure = _probe.run(params, http=ScriptedHttp({"data-api": [resp()]}), containers=engine)
    s = {x["name"]: x for x in result["services"]}
    assert list(s) == ["data-api", "demo-data-api-1", "demo-init-1", "demo-worker-1"]
    assert s["demo-init-1"]["status"] == "healthy" and s["demo-init-1"]["url"] is None
    assert s["demo-worker-1"]["error"] == "container demo-worker-1 is running (unhealthy)"
    assert s["demo-worker-1"]["critical"] is True and s["demo-worker-1"]["status_code"] is None
    assert result["overall_status"] == "fail" and "demo-worker-1 (critical)" in failure


def test_compose_project_without_containers_fails():
    params = {"targets": [], "compose_project": "demo", "compose_project_critical": False, "retries": 0}
    result, failure = _probe.run(params, http=ScriptedHttp({}), containers=ProjectContainers({}))
    assert result["services"][0]["name"] == "compose project demo"
    assert result["services"][0]["error"] == "no containers of compose project demo"
    assert result["overall_status"] == "degraded" and failure is None
