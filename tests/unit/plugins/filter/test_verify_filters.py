"""The verify role's filters: the checks built from every documented option of every catalogue,
the one-line errors for bad entries, the stack's compose projects, and the outcome."""
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.homeiq.deploy.plugins.filter import verify as F
from ansible_collections.homeiq.deploy.plugins.module_utils import _verify_targets as V

BASE = "http://127.0.0.1"


def plan(**catalogues):
    kw = {k: catalogues.pop(k) for k in ("scheme", "host", "browser_host", "max_latency_ms") if k in catalogues}
    return F.verify_targets(catalogues, **kw)


def one(catalogue, entry, **kw):
    result = plan(**{catalogue: [entry]}, **kw)
    assert result["error"] == ""
    return result


# ---- services and functional checks: every documented option ----------------------------------

TARGET_CASES = [
    # (entry, expected target) for verify_services; functional checks differ only by the default path
    ({"name": "a", "port": 8006}, {"name": "a", "url": BASE + ":8006/health", "max_latency_ms": 500}),
    ({"name": "a", "port": "8006"}, {"name": "a", "url": BASE + ":8006/health", "max_latency_ms": 500}),
    ({"name": "a", "port": 8006, "path": "/ready"}, {"name": "a", "url": BASE + ":8006/ready", "max_latency_ms": 500}),
    ({"name": "a", "url": "https://api.example.com/health"},
     {"name": "a", "url": "https://api.example.com/health", "max_latency_ms": 500}),
    ({"name": "a", "port": 1, "critical": True}, {"critical": True}),
    ({"name": "a", "port": 1, "critical": False}, {"critical": False}),
    ({"name": "a", "port": 1, "method": "POST"}, {"method": "POST"}),
    ({"name": "a", "port": 1, "headers": {"Authorization": "Bearer s3cret"}}, {"headers": {"Authorization": "Bearer s3cret"}}),
    ({"name": "a", "port": 1, "body": {"q": 1}}, {"body": {"q": 1}}),
    ({"name": "a", "port": 1, "expected_status": [200, 204]}, {"expected_status": [200, 204]}),
    ({"name": "a", "port": 1, "max_latency_ms": 1000}, {"max_latency_ms": 1000}),
    ({"name": "a", "port": 1, "json_query": "status"}, {"json_query": "status"}),
    ({"name": "a", "port": 1, "json_query": "status", "json_equals": "healthy"}, {"json_query": "status", "json_equals": "healthy"}),
    ({"name": "a", "port": 1, "json_equals": False}, {"json_equals": False}),
    ({"name": "a", "port": 1, "body_contains": "HomeIQ"}, {"body_contains": "HomeIQ"}),
    ({"name": "a", "port": 1, "container": "homeiq-a"}, {"container": "homeiq-a"}),
    ({"name": "a", "port": 1, "follow_redirects": True}, {"follow_redirects": True}),
    ({"name": "a", "port": 1, "critical": None}, {}),  # null is as if unset
]


@pytest.mark.parametrize("entry,expected", TARGET_CASES)
def test_service_options(entry, expected):
    target = one("services", entry)["probe"][0]
    for key, value in expected.items():
        assert target[key] == value
    if entry.get("critical") is None:
        assert "critical" not in target  # health_probe's default (false) applies
    assert set(target) <= set(V.PROBE_KEYS) | {"name", "url"}


@pytest.mark.parametrize("entry,expected", TARGET_CASES)
def test_functional_check_options(entry, expected):
    target = one("functional_checks", entry)["probe"][0]
    expected = dict(expected)
    if "url" in expected and "path" not in entry and "url" not in entry:
        expected["url"] = expected["url"].replace("/health", "/")
    for key, value in expected.items():
        assert target[key] == value


def test_scheme_host_and_latency_defaults():
    result = plan(services=[{"name": "a", "port": 443, "path": "/h"}], scheme="https", host="10.0.0.5", max_latency_ms=2000)
    assert result["probe"] == [{"name": "a", "url": "https://10.0.0.5:443/h", "max_latency_ms": 2000}]


def test_url_without_port_is_what_crashed_the_role():
    result = plan(services=[{"name": "edge", "url": "https://edge.example.com/health", "critical": True}],
                  functional_checks=[{"name": "f", "url": "http://x.example.com/api?q=1"}])
    assert [t["url"] for t in result["probe"]] == ["https://edge.example.com/health", "http://x.example.com/api?q=1"]


def test_routes_defaults():
    result = one("services", {"name": "ai", "port": 8034, "container": "homeiq-ai",
                              "routes": {"app": "src.main:app", "expect_before": [["/a/stats", "/a/{id}"]]}})
    assert result["routes"] == [{"name": "ai", "critical": True, "args": {
        "mode": "container", "container": "homeiq-ai", "app": "src.main:app", "url": BASE + ":8034/openapi.json",
        "expect_before": [["/a/stats", "/a/{id}"]], "allow": []}}]
    assert "routes" not in result["probe"][0]


ROUTE_OPTION_CASES = [
    ("mode", "openapi"), ("container", "other"), ("app", "app:app"), ("python", "python3.12"), ("workdir", "/app"),
    ("url", "https://api.example.com/openapi.json"), ("headers", {"Authorization": "Bearer t"}), ("path", "/app/src"),
    ("path_filter", "^/api/"), ("expect_before", [["/x", "/{y}"]]), ("allow", ["/z"]),
]


@pytest.mark.parametrize("key,value", ROUTE_OPTION_CASES)
def test_route_options(key, value):
    check = one("services", {"name": "ai", "port": 8034, "container": "c", "routes": {key: value}})["routes"][0]
    assert check["args"][key] == value


def test_route_critical_and_base_of_a_url_service():
    check = one("services", {"name": "ai", "url": "https://api.example.com/v1/health",
                             "routes": {"mode": "openapi", "critical": False}})["routes"][0]
    assert check["critical"] is False
    assert check["args"]["url"] == "https://api.example.com/openapi.json"
    assert "container" not in check["args"]


# ---- nginx locations ------------------------------------------------------------------------

def test_nginx_location_defaults_and_options():
    result = one("nginx_checks", {"name": "dash", "container": "c", "port": 3000, "lint": True, "locations": [
        {"path": "/api/stats", "json_query": "total > `0`"},
        {"name": "svc via dash", "path": "/svc", "critical": False, "max_latency_ms": 900, "headers": {"X": "y"},
         "expected_status": [200], "body_contains": "ok", "method": "GET", "follow_redirects": True, "json_equals": 1,
         "body": "b", "container": "c2"},
        {"name": "elsewhere", "url": "http://10.1.1.1:81/x"},
        {"name": "other port", "port": 3001, "path": "/y"},
    ]})
    first, second, third, fourth = result["probe"]
    assert first == {"name": "dash /api/stats", "url": BASE + ":3000/api/stats", "critical": True, "max_latency_ms": 500,
                     "json_query": "total > `0`"}
    assert second["critical"] is False and second["max_latency_ms"] == 900 and second["url"] == BASE + ":3000/svc"
    assert {k: second[k] for k in ("headers", "expected_status", "body_contains", "method", "follow_redirects",
                                   "json_equals", "body", "container")} == {
        "headers": {"X": "y"}, "expected_status": [200], "body_contains": "ok", "method": "GET",
        "follow_redirects": True, "json_equals": 1, "body": "b", "container": "c2"}
    assert third["url"] == "http://10.1.1.1:81/x"
    assert fourth["url"] == BASE + ":3001/y"


def test_nginx_critical_false_is_the_locations_default():
    result = one("nginx_checks", {"name": "dash", "port": 3000, "critical": False, "locations": [{"path": "/a"}]})
    assert result["probe"][0]["critical"] is False


def test_nginx_without_locations_builds_no_target():
    assert one("nginx_checks", {"name": "dash", "container": "c"})["probe"] == []


# ---- auth checks --------------------------------------------------------------------------

def test_auth_defaults():
    result = one("auth_checks", {"name": "admin-api", "port": 8004, "protected": ["/api/v1/services"], "public": ["/health"]})
    assert result["probe"] == [
        {"name": "admin-api /api/v1/services without token", "url": BASE + ":8004/api/v1/services",
         "expected_status": [401], "critical": True, "max_latency_ms": 500},
        {"name": "admin-api /health public", "url": BASE + ":8004/health", "expected_status": [200], "critical": True,
         "max_latency_ms": 500}]


def test_auth_options():
    result = one("auth_checks", {"name": "adm", "url": "https://adm.example.com/", "protected": ["/p"], "public": [],
                                 "unauthorized_status": 403, "critical": False, "max_latency_ms": 50})
    assert result["probe"] == [{"name": "adm /p without token", "url": "https://adm.example.com/p", "expected_status": [403],
                                "critical": False, "max_latency_ms": 50}]
    assert "headers" not in result["probe"][0]


# ---- browser checks -----------------------------------------------------------------------

BROWSER_CASES = [
    ({"name": "dash", "port": 3000}, {"name": "dash", "url": BASE + ":3000/", "critical": True, "timeout": 30.0}),
    ({"name": "dash", "port": 3000, "path": "/synergies", "wait_for": "main#content"},
     {"name": "dash", "url": BASE + ":3000/synergies", "critical": True, "timeout": 30.0, "wait_for": "main#content"}),
    ({"name": "dash", "url": "https://dash.example.com/", "critical": False, "timeout": 5},
     {"name": "dash", "url": "https://dash.example.com/", "critical": False, "timeout": 5.0}),
]


@pytest.mark.parametrize("entry,expected", BROWSER_CASES)
def test_browser_options(entry, expected):
    assert one("browser_checks", entry)["browser"] == [expected]


def test_browser_host_defaults_to_host_and_can_differ():
    assert one("browser_checks", {"name": "b", "port": 1}, host="10.0.0.5")["browser"][0]["url"] == "http://10.0.0.5:1/"
    assert one("browser_checks", {"name": "b", "port": 1}, host="127.0.0.1",
               browser_host="app1.example.com")["browser"][0]["url"] == "http://app1.example.com:1/"


# ---- bad entries: one line naming the entry and what to fix ----------------------------------

BAD_CASES = [
    ({"services": [{"name": "data-api", "path": "/health"}]},
     "verify_services entry data-api needs a url or a port (probed on verify_host)"),
    ({"services": [{"port": 1}]}, "verify_services[0] has no name"),
    ({"services": ["data-api"]}, "verify_services[0] must be a dict"),
    ({"services": {"name": "x"}}, "verify_services must be a list of entries"),
    ({"services": [{"name": "a", "port": "http"}]}, "verify_services entry a: port 'http' is not a port number"),
    ({"services": [{"name": "a", "port": 70000}]}, "verify_services entry a: port 70000 is not a port number"),
    ({"services": [{"name": "a", "port": 1, "path": "health"}]}, "verify_services entry a: path 'health' must start with /"),
    ({"services": [{"name": "a", "url": "api.example.com/health"}]}, "verify_services entry a: url 'api.example.com/health' must be a full"),
    ({"services": [{"name": "a", "url": "http://x/", "port": 1}]}, "verify_services entry a: give url or port and path, not both"),
    ({"services": [{"name": "a", "port": 1, "json_qurey": "x"}]}, "verify_services entry a: unknown key json_qurey (known: name,"),
    ({"services": [{"name": "a", "port": 1, "routes": ["x"]}]}, "verify_services entry a: routes must be a dict"),
    ({"services": [{"name": "a", "port": 1, "routes": {"modes": "x"}}]}, "verify_services entry a routes: unknown key modes"),
    ({"functional_checks": [{"name": "f"}]}, "verify_functional_checks entry f needs a url or a port"),
    ({"nginx_checks": [{"name": "n", "locations": [{"path": "/a"}]}]},
     "verify_nginx_checks entry n location n /a needs a port on its nginx entry (or a url)"),
    ({"nginx_checks": [{"name": "n", "port": 1, "locations": [{"name": "l"}]}]}, "verify_nginx_checks entry n: locations[0] needs a path"),
    ({"nginx_checks": [{"name": "n", "port": 1, "locations": "x"}]}, "verify_nginx_checks entry n: locations must be a list"),
    ({"nginx_checks": [{"name": "n", "port": 1, "locations": [{"path": "/a", "jsonquery": "x"}]}]},
     "verify_nginx_checks entry n location n /a: unknown key jsonquery"),
    ({"nginx_checks": [{"name": "n", "conatiner": "c"}]}, "verify_nginx_checks entry n: unknown key conatiner"),
    ({"auth_checks": [{"name": "adm", "protected": ["/a"]}]}, "verify_auth_checks entry adm needs a url or a port"),
    ({"auth_checks": [{"name": "adm", "port": 1, "protected": "/a"}]}, "verify_auth_checks entry adm: protected must be a list"),
    ({"auth_checks": [{"name": "adm", "port": 1, "public": ["health"]}]}, "verify_auth_checks entry adm: public path 'health' must start with /"),
    ({"auth_checks": [{"name": "adm", "port": 1, "url": "http://x"}]}, "verify_auth_checks entry adm: give url or port, not both"),
    ({"browser_checks": [{"name": "b"}]}, "verify_browser_checks entry b needs a url or a port"),
    ({"browser_checks": [{"name": "b", "port": 1, "timeout": 0}]}, "verify_browser_checks entry b: timeout 0 must be a positive"),
    ({"browser_checks": [{"name": "b", "port": 1, "wait_for": ""}]}, "verify_browser_checks entry b: wait_for must be a CSS selector"),
    ({"browser_checks": [{"name": "b", "port": 1, "waitfor": "#x"}]}, "verify_browser_checks entry b: unknown key waitfor"),
    ({"services": [{"name": "a", "port": 1}], "functional_checks": [{"name": "a", "port": 2}]}, "two checks are named 'a'"),
    ({"services": [{"name": "a", "port": 1}], "browser_checks": [{"name": "a", "port": 2}]}, "two checks are named 'a'"),
    ({"services": [], "scheme": "ftp"}, "verify_scheme 'ftp' must be http or https"),
]


@pytest.mark.parametrize("catalogues,message", BAD_CASES)
def test_bad_entries_are_one_line(catalogues, message):
    result = plan(**catalogues)
    assert result["error"].startswith(message), result["error"]
    assert "\n" not in result["error"]
    assert result["error"].endswith("fix inventories/<env>/group_vars/all/verify.yml")
    assert result["probe"] == [] and result["routes"] == [] and result["browser"] == []


def test_a_bad_entry_never_shows_its_headers():
    result = plan(services=[{"name": "a", "headers": {"Authorization": "Bearer s3cret"}}])
    assert result["error"] and "s3cret" not in result["error"]


def test_filter_rejects_an_unknown_catalogue():
    with pytest.raises(AnsibleFilterError, match="unknown catalogue sevices"):
        F.verify_targets({"sevices": []})


# ---- compose projects of a stack -------------------------------------------------------------

@pytest.mark.parametrize("stack,single,expected", [
    ([], "homeiq-demo", ["homeiq-demo"]),
    ([], "", []),
    (None, "homeiq-demo", ["homeiq-demo"]),
    ([{"name": "homeiq-core-platform", "files": ["domains/core-platform/compose.yml"]}, {"name": "homeiq-frontends"}],
     "homeiq", ["homeiq-core-platform", "homeiq-frontends"]),
    ([{"name": "a"}, {"name": "a"}], "", ["a"]),
])
def test_project_names(stack, single, expected):
    assert F.verify_project_names(stack, single) == expected


def test_project_names_of_a_stack_entry_without_name():
    with pytest.raises(AnsibleFilterError, match=r"deploy_projects\[1\] has no name"):
        F.verify_project_names([{"name": "a"}, {"files": []}], "")


# ---- outcome ----------------------------------------------------------------------------

NGINX_DUMP_OK = "server {\n  location /r/ {\n    proxy_pass http://up:9000/;\n  }\n}\n"
NGINX_DUMP_BAD = "server {\n  location /w/ {\n    set $svc \"http://up:9000\";\n    proxy_pass $svc/;\n  }\n}\n"


def test_nginx_findings():
    ok, bad, broken, unlinted = V.nginx_findings([
        {"item": {"name": "a", "container": "ca"}, "rc": 0, "stdout": NGINX_DUMP_OK, "stderr": ""},
        {"item": {"name": "b", "container": "cb", "critical": False}, "rc": 0, "stdout": NGINX_DUMP_BAD, "stderr": ""},
        {"item": {"name": "c", "container": "cc"}, "rc": 1, "stdout": "",
         "stderr": "2026/12/04 10:00:00 [emerg] 12#12: unknown directive \"bogus\" in /etc/nginx/nginx.conf:4\n"
                   "nginx: configuration file /etc/nginx/nginx.conf test failed\n"},
        {"item": {"name": "d", "container": "cd", "lint": False}, "rc": 0, "stdout": NGINX_DUMP_BAD, "stderr": ""},
    ])
    assert ok["ok"] and ok["proxy_pass_with_variable_and_uri"] == []
    assert not bad["ok"] and bad["proxy_pass_with_variable_and_uri"] == ["$svc/"] and bad["critical"] is False
    assert not broken["ok"] and broken["config_test_error"] == 'nginx: [emerg] unknown directive "bogus" in /etc/nginx/nginx.conf:4'
    assert unlinted["ok"]


def test_nginx_without_docker_answer():
    finding = V.nginx_findings([{"item": {"name": "a", "container": "gone"}, "rc": 1, "stdout": "",
                                 "stderr": "Error response from daemon: No such container: gone"}])[0]
    assert finding["config_test_error"] == "Error response from daemon: No such container: gone"


def test_outcome_adds_every_kind_of_check():
    health = [{"name": "data-api", "status": "healthy", "critical": True},
              {"name": "events", "status": "unhealthy", "critical": True, "error": "status 503, expected 200"},
              {"name": "stats", "status": "error", "critical": False, "error": "connection refused"}]
    out = F.verify_outcome(
        health,
        routes=[{"item": {"name": "ai", "critical": True}, "ok": False, "msg": "1 unreachable route"},
                {"item": {"name": "ai2", "critical": True}, "ok": True}],
        nginx=[{"item": {"name": "dash", "container": "c"}, "rc": 0, "stdout": NGINX_DUMP_BAD, "stderr": ""}],
        browser=[{"item": {"name": "dash page", "url": "http://x/", "critical": False}, "ok": False, "failed": True,
                  "msg": "browser check of http://x/ failed: element #m not found", "element_found": False},
                 {"item": {"name": "ok page", "url": "http://y/", "critical": True}, "ok": True, "elapsed_ms": 80.0}])
    assert out["status"] == "fail"
    assert out["failed_services"] == ["events", "stats", "ai", "dash", "dash page"]
    assert out["critical_failed_services"] == ["events", "ai", "dash"]
    assert (out["passed_count"], out["failed_count"]) == (3, 5)
    assert out["failures"][-1] == {"name": "dash page", "check": "browser", "critical": False,
                                   "why": "browser check of http://x/ failed: element #m not found"}
    assert out["lines"][3] == "dash: proxy_pass $svc/ has a variable and a URI, so nginx sends every request to that one URI"
    assert [b["ok"] for b in out["browser"]] == [False, True]


def test_outcome_degraded_and_pass():
    assert F.verify_outcome([{"name": "a", "status": "error", "critical": False, "error": "x"}])["status"] == "degraded"
    out = F.verify_outcome([{"name": "a", "status": "healthy", "critical": True}], routes=[], nginx=[], browser=[])
    assert (out["status"], out["passed_count"], out["failed_count"]) == ("pass", 1, 0)


def test_a_browser_check_that_could_not_run_fails_with_its_line():
    out = F.verify_outcome([], browser=[{"item": {"name": "p", "critical": True}, "failed": True, "ok": False,
                                         "msg": "Chromium is not installed at /usr/bin/chromium: run make test-services"}])
    assert out["failures"][0]["why"].startswith("Chromium is not installed")
    assert out["status"] == "fail"


@pytest.mark.parametrize("value", ["fast", None, "5OO"])
def test_a_latency_threshold_that_is_no_number_is_one_line(value):
    with pytest.raises(AnsibleFilterError, match=r"^verify_max_latency_ms .* is not a number of milliseconds: set a whole number"):
        plan(services=[{"name": "a", "port": 8006}], max_latency_ms=value)
