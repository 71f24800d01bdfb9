"""The runner: configuration errors, warn/skip/only, summary and redaction (checks needing the
engine are left out with `only`; the integration tests run them for real)."""
from __future__ import annotations

import textwrap

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight as pf


@pytest.fixture
def project(tmp_path):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          api:
            image: x
            env_file: [api.env]
            healthcheck: {test: ["CMD", "true"]}
            deploy: {resources: {limits: {memory: 64M, cpus: "0.5"}}}
          worker:
            image: x
            depends_on: [api]
        """))
    (tmp_path / "api.env").write_text("API_TOKEN=changeme\nREAL_SECRET=s3cr3t-Value-for-the-test\n")
    return tmp_path


def run(project, **params):
    params.setdefault("project_src", str(project))
    return pf.run_preflight(params)


@pytest.mark.parametrize("params, msg", [
    ({"project_src": ""}, "project_src is required"),
    ({"warn": ["nonsense"]}, "unknown check 'nonsense' in warn"),
    ({"only": ["disk", "dsik"]}, "unknown check 'dsik' in only"),
    ({"gates": [{"name": "a"}]}, "gates[0] needs a command"),
    ({"gates": [{"name": "a", "command": "true"}, {"name": "a", "command": "false"}]}, "two gates are named 'a'"),
    ({"compose_min_version": "latest"}, "compose_min_version 'latest' is not a version"),
    ({"network_hosts": ["nohost"]}, "network_hosts:"),
    ({"home_assistant_url": "ha.local:8123"}, "home_assistant_url 'ha.local:8123' is not an http"),
    ({"secret_scan_allow": [{}]}, "secret_scan_allow[0] needs at least one of path, rule, fingerprint"),
])
def test_bad_configuration_is_one_line(project, params, msg):
    with pytest.raises(pf.PreflightError) as info:
        run(project, **params)
    assert msg in str(info.value) and "\n" not in str(info.value)


def test_missing_project_src(tmp_path):
    with pytest.raises(pf.PreflightError, match="does not exist or is not a folder"):
        pf.run_preflight({"project_src": str(tmp_path / "absent"), "only": ["disk"]})


def test_only_warn_and_summary(project):
    res = run(project, only=["tokens", "resource_limits", "depends_on"], warn=["resource_limits"],
              docker_cli="/nonexistent/docker")
    by = {c["check"]: c for c in res["checks"]}
    assert set(by) == {"tokens", "resource_limits", "depends_on"}
    assert by["tokens"]["result"] == "fail" and "API_TOKEN is a known default" in by["tokens"]["why"]
    assert by["resource_limits"]["result"] == "warn" and "no memory limit: worker" in by["resource_limits"]["why"]
    assert "read from the compose files" in by["resource_limits"]["why"]  # Compose was not reachable
    assert by["depends_on"]["result"] == "pass"
    assert res["failed_checks"] == ["tokens"] and res["warned_checks"] == ["resource_limits"]
    assert res["counts"]["fail"] == 1 and res["counts"]["warn"] == 1 and res["counts"]["pass"] == 1
    # in the order of the checklist; with `only`, the unselected checks stay out of the summary
    assert [line.split(":")[0] for line in res["summary"]] == ["WARN  resource_limits", "PASS  depends_on", "FAIL  tokens"]
    assert res["msg"].startswith("preflight: 1 of 3 checks failed (tokens)")
    assert all("not selected" in s["why"] for s in res["skipped_checks"] if s["check"] != "gates")


def test_skip_and_unconfigured_checks_are_listed(project):
    res = run(project, only=["home_assistant", "influxdb", "network", "gates", "env_vars"], skip=["network"])
    skipped = {s["check"]: s["why"] for s in res["skipped_checks"]}
    assert skipped["home_assistant"] == "not configured (home_assistant_url is empty)"
    assert skipped["influxdb"] == "not configured (influxdb_url is empty)"
    assert skipped["network"] == "skipped by configuration (skip)"
    assert skipped["gates"] == "no gate commands configured (gates)"
    assert res["checks"] == [] and res["msg"] == "preflight: no check ran (every one skipped or not configured)"


def test_gates_results_are_redacted(project):
    secret = "s3cr3t-Value-for-the-test"
    res = run(project, only=["gates"], gates=[
        {"name": "leaky", "command": "echo \"got $REAL_SECRET and $EXTRA\"; exit 2", "environment": {"REAL_SECRET": secret}},
        {"name": "fine", "command": "echo ok"}], environment={"EXTRA": "extra-secret-value"})
    by = {c["check"]: c for c in res["checks"]}
    assert by["gate:leaky"]["result"] == "fail" and by["gate:fine"]["result"] == "pass"
    text = repr(res)
    assert secret not in text and "extra-secret-value" not in text
    assert "got ******** and ********" in by["gate:leaky"]["details"]


def test_a_check_that_crashes_does_not_hide_the_others(project, monkeypatch):
    def boom(ctx):
        raise KeyError("surprise")

    monkeypatch.setattr(pf, "CHECKS", (("disk", boom),) + tuple(c for c in pf.CHECKS if c[0] != "disk"))
    res = run(project, only=["disk", "depends_on"], docker_cli="/nonexistent/docker")
    by = {c["check"]: c for c in res["checks"]}
    assert by["disk"]["result"] == "fail" and by["disk"]["why"].startswith("the check could not run: KeyError")
    assert by["depends_on"]["result"] == "pass"


@pytest.mark.parametrize("name, secret", [
    ("INFLUXDB_TOKEN", True), ("HOME_ASSISTANT_TOKEN", True), ("DB_PASSWORD", True), ("SECRET_KEY", True),
    ("OPENAI_API_KEY", True), ("TOKEN_URL", False), ("PASSWORD_FILE", False), ("PWD", False), ("OLDPWD", False),
    ("INFLUXDB_URL", False), ("HOMEIQ_RELEASE", False), ("DB_PASSWORD_MIN_LENGTH", False),
])
def test_secret_names(name, secret):
    assert pf.is_secret_name(name) is secret


def test_urls_and_hosts_read_variables_from_the_project(project, tmp_path):
    import socket  # pylint: disable=import-outside-toplevel

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (project / "ports.env").write_text(f"PF_PORT={port}\n")
    res = run(project, only=["network", "influxdb"], env_files=["ports.env"], network_timeout=2, http_timeout=2,
              influxdb_url="http://127.0.0.1:${PF_PORT:-1}", influxdb_token="tok-Q8m2Lx7RtZ9pW4vN6bK1",
              network_hosts=["127.0.0.1:${PF_PORT}", "${PF_UNSET}"])
    by = {c["check"]: c for c in res["checks"]}
    assert f"InfluxDB at http://127.0.0.1:{port} cannot be reached: connection refused" in by["influxdb"]["why"]
    assert f"127.0.0.1:{port} does not accept connections" in by["network"]["why"]
    assert "'' is not host:port or a URL with a port" in by["network"]["why"]
