"""The preflight role and preflight.yml as operators run them: real ansible-playbook processes.

- A failing preflight lists every failure at once and stops the play before anything is built,
  in check mode and for real; with -vvv and ANSIBLE_INJECT_INVOCATION=1 not one planted token
  value appears in the output.
- A passing preflight (a failing gate set to warn) lets the play go on, in check mode and for real.
- The local inventory passes against the demo stack (examples/homeiq-demo).
- Bad role input fails with one line naming the variable.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "preflight"))
import preflight_helpers as h  # noqa: E402  pylint: disable=wrong-import-position
import preflight_services as services  # noqa: E402  pylint: disable=wrong-import-position

ROOT = h.load_root_conftest()
REPO = ROOT.REPO
GOOD = h.COMPOSE / "good"

TWO_PLAYS = [
    {"name": "Preflight", "hosts": "all", "gather_facts": False, "roles": [{"role": "homeiq.deploy.preflight"}]},
    {"name": "Build and deploy", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "Build would start here", "ansible.builtin.debug": {"msg": "{{ preflight_result.counts }}"}}]},
]


def inventory(path, group_vars):
    """An inventory folder: localhost in group homeiq, and group_vars/all/preflight.yml."""
    path = Path(path)
    (path / "group_vars" / "all").mkdir(parents=True)
    (path / "hosts.yml").write_text(yaml.safe_dump({"homeiq": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}))
    (path / "group_vars" / "all" / "preflight.yml").write_text(yaml.safe_dump(group_vars, sort_keys=False))
    return str(path)


def summary_of(run):
    rec = run.task("Run every preflight check")
    return rec["result"]


@pytest.fixture(scope="module")
def servers():
    ha_token, influx_token = "ha-" + h.rand(40), "ix-" + h.rand(40)
    ha = services.home_assistant(ha_token)
    influx = services.influxdb(influx_token)
    yield {"ha": ha, "influx": influx, "ha_token": ha_token, "influx_token": influx_token}
    ha.stop()
    influx.stop()


@pytest.fixture
def failing(tmp_path, servers):
    """An inventory whose preflight fails many checks, and every secret value planted in it."""
    planted = h.materialize_secrets_tree(tmp_path / "project")
    secrets = {k: planted[k] for k in h.SECRET_KEYS}
    secrets.update({
        "influx_env_token": "ix-" + h.rand(40),
        "ha_wrong": "ha-" + h.rand(40),
        "influx_wrong": "ix-" + h.rand(40),
        "gate_secret": "gs-" + h.rand(30),
        "db_password": "db-" + h.rand(20),
    })
    env_file = h.write_env(tmp_path / "prod.env", {
        "INFLUXDB_TOKEN": secrets["influx_env_token"],
        "ADMIN_API_TOKEN": "changeme",
        "HOME_ASSISTANT_TOKEN": secrets["ha_wrong"],
        "DB_PASSWORD": secrets["db_password"],
    })
    inv = inventory(tmp_path / "inventory", {
        "preflight_project_src": str(tmp_path / "project"),
        "preflight_env_files": [env_file],
        "preflight_min_free_gb": 0.001,
        "preflight_home_assistant_url": servers["ha"].url,
        "preflight_home_assistant_token_env": "HOME_ASSISTANT_TOKEN",
        "preflight_influxdb_url": servers["influx"].url,
        "preflight_influxdb_token": secrets["influx_wrong"],
        "preflight_environment": {"GATE_SECRET": secrets["gate_secret"]},
        "preflight_gates": [{"name": "security_tests",
                             "command": 'echo "using token $GATE_SECRET"; echo "1 failed"; exit 1'}],
    })
    return inv, secrets


EXPECTED_FAILURES = {"healthchecks", "resource_limits", "tokens", "home_assistant", "influxdb", "secret_scan",
                     "gate:security_tests"}


def test_failing_preflight_lists_every_failure_stops_before_the_build_and_shows_no_secret(playbook, failing, tmp_path):
    """check mode, then for real; at -vvv with the module invocation in the output."""
    inv, secrets = failing
    book = tmp_path / "two-plays.yml"
    book.write_text(yaml.safe_dump(TWO_PLAYS, sort_keys=False))
    env = {"ANSIBLE_INJECT_INVOCATION": "1"}
    for check in (True, False):
        run = playbook(book, inventory=inv, verbosity=3, check=check, env=env)
        assert run.rc == 2, run.output[-3000:]
        res = summary_of(run)
        assert set(res["failed_checks"]) == EXPECTED_FAILURES, res["summary"]
        # every check ran: the failures are all in one summary, with the passes next to them
        ran = {c["check"] for c in res["checks"]}
        assert {"engine", "engine_access", "compose_version", "disk", "network", "env_files", "compose_config",
                "depends_on"} <= ran
        shown = run.task("Show the preflight summary")["result"]["msg"]
        assert len([line for line in shown if line.startswith("FAIL")]) == len(EXPECTED_FAILURES)
        stop = run.task("Stop before anything is built or deployed")
        assert stop["status"] == "failed"
        assert "7 of" in stop["result"]["msg"] and "nothing was built or deployed" in stop["result"]["msg"]
        assert not [r for r in run.results if r["task"] == "Build would start here"], "the build ran after a failed preflight"
        # why each failed, without the secret
        why = {c["check"]: c["why"] for c in res["checks"]}
        assert "rejects the token (401)" in why["home_assistant"] and "not the host" in why["home_assistant"]
        assert "rejects the token (401)" in why["influxdb"]
        assert "ADMIN_API_TOKEN is a known default" in why["tokens"]
        # -vvv printed the module's invocation, masked
        assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in run.output
        assert "module_args" in run.output
        leaked = h.secret_values_in(run.output + json.dumps(run.results), secrets)
        assert leaked == [], f"secret values in the output: {leaked}"


def test_passing_preflight_warns_and_lets_the_play_go_on(playbook, servers, tmp_path):
    env_file = h.write_env(tmp_path / "good.env", {"PF_API_PORT": h.free_port(), "PF_API_TOKEN": "tok-" + h.rand(30),
                                                   "PF_SHARED_SECRET": "shs-" + h.rand(20)})
    inv = inventory(tmp_path / "inventory", {
        "preflight_project_src": str(GOOD),
        "preflight_env_files": [env_file],
        "preflight_env_example_files": ["project.env.example"],
        "preflight_required_env_vars": ["PF_API_TOKEN"],
        "preflight_min_free_gb": 0.001,
        "preflight_home_assistant_url": servers["ha"].url,
        "preflight_home_assistant_token": servers["ha_token"],
        "preflight_influxdb_url": servers["influx"].url,
        "preflight_influxdb_token": servers["influx_token"],
        "preflight_influxdb_bucket": "home_assistant_events",
        "preflight_gates": [{"name": "unit_tests", "command": "echo '3 passed'"},
                            {"name": "security_tests", "command": "echo '1 failed'; exit 1"}],
        "preflight_warn_checks": ["gate:security_tests"],
        # the example file ships a real-looking default on purpose (the tokens check's example case)
        "preflight_secret_scan_allow": [{"path": "project.env.example", "rule": "assigned-secret"}],
    })
    book = tmp_path / "two-plays.yml"
    book.write_text(yaml.safe_dump(TWO_PLAYS, sort_keys=False))
    for check in (True, False):
        run = playbook(book, inventory=inv, check=check)
        assert run.rc == 0, run.output[-3000:]
        res = summary_of(run)
        assert res["failed_checks"] == [] and res["warned_checks"] == ["gate:security_tests"], res["summary"]
        assert res["counts"]["fail"] == 0 and res["counts"]["pass"] >= 15
        assert run.task("Stop before anything is built or deployed")["status"] == "skipped"
        build = run.task("Build would start here")
        assert build["status"] == "ok" and build["result"]["msg"]["warn"] == 1
        assert any(line.startswith("WARN  gate:security_tests") for line in run.task("Show the preflight summary")["result"]["msg"])


def test_local_inventory_passes_against_the_demo_stack(playbook):
    """inventories/local on examples/homeiq-demo: every check passes; InfluxDB and network may only warn
    (the demo's InfluxDB answers once the stack runs). Free ports stand in for the demo's, so a demo
    already running on this machine does not change the outcome."""
    ports = {f"HOMEIQ_{s}_PORT": str(h.free_port()) for s in (
        "INFLUXDB", "WEBSOCKET_INGESTION", "DATA_API", "ADMIN_API", "AI_PATTERN_SERVICE", "AI_AUTOMATION_SERVICE",
        "HEALTH_DASHBOARD")}
    for check in (True, False):
        run = playbook(REPO / "preflight.yml", inventory=REPO / "inventories" / "local", check=check, env=ports)
        assert run.rc == 0, run.output[-3000:]
        res = summary_of(run)
        assert res["failed_checks"] == [], res["summary"]
        assert set(res["warned_checks"]) <= {"influxdb", "network"}
        passed = {c["check"] for c in res["checks"] if c["result"] == "pass"}
        assert {"engine", "engine_access", "compose_version", "disk", "env_files", "ports", "compose_config",
                "healthchecks", "resource_limits", "depends_on", "tokens", "secret_scan"} <= passed
        assert {s["check"] for s in res["skipped_checks"]} >= {"home_assistant"}
        ports_why = next(c["why"] for c in res["checks"] if c["check"] == "ports")
        assert ports_why.startswith("7 published host ports")
        # the InfluxDB URL's ${HOMEIQ_INFLUXDB_PORT:-8086} followed the environment: nothing listens there
        influx = next(c for c in res["checks"] if c["check"] == "influxdb")
        assert influx["result"] == "warn"
        assert f"InfluxDB at http://127.0.0.1:{ports['HOMEIQ_INFLUXDB_PORT']} cannot be reached" in influx["why"]


def test_stack_from_deploy_projects_and_the_baseline_written_by_the_documented_command(playbook, tmp_path):
    """preflight_projects defaults to the deploy role's deploy_projects; the stack's name is not passed on as a
    compose project. `-e preflight_secret_scan_write_baseline=true` writes the baseline, the next run accepts it."""
    root = tmp_path / "homeiq"
    env = {"POSTGRES_PASSWORD": "pw-" + h.rand(24), "SESSION_SECRET": "ss-" + h.rand(24), "ADMIN_API_KEY": "ak-" + h.rand(24)}
    literals = h.materialize_homeiq_tree(root, env=env)
    committed = "Pw" + h.rand(20)
    (root / "infrastructure" / "legacy.yaml").write_text(f"legacy:\n  db_password: {committed}\n")
    inv = inventory(tmp_path / "inventory", {
        "deploy_projects": [{"name": "pfrole-core", "files": ["domains/core/compose.yml"], "env_files": [".env"]},
                            {"name": "pfrole-web", "files": ["domains/web/compose.yml"], "env_files": [".env"]}],
        "preflight_project_src": str(root),
        "preflight_project_name": "pfrole-stack",
        "preflight_only_checks": ["engine", "compose_config", "mounts", "tokens", "secret_scan"],
    })
    write = playbook(REPO / "preflight.yml", inventory=inv, extra_vars={"preflight_secret_scan_write_baseline": True})
    assert write.rc == 0, write.output[-3000:]
    res = summary_of(write)
    assert res["changed"] is True and res["projects"] == ["pfrole-core", "pfrole-web"]
    assert "written: 1 finding accepted by it" in next(c["why"] for c in res["checks"] if c["check"] == "secret_scan")
    assert (root / ".homeiq-secrets-baseline.json").exists()
    for check in (True, False):
        run = playbook(REPO / "preflight.yml", inventory=inv, check=check, verbosity=3, env={"ANSIBLE_INJECT_INVOCATION": "1"})
        assert run.rc == 0, run.output[-3000:]
        res = summary_of(run)
        assert res["changed"] is False and res["failed_checks"] == [], res["summary"]
        assert [(c["check"], c.get("project")) for c in res["checks"]] == [
            ("engine", None), ("compose_config", "pfrole-core"), ("compose_config", "pfrole-web"), ("mounts", "pfrole-core"),
            ("mounts", "pfrole-web"), ("tokens", "pfrole-core"), ("tokens", "pfrole-web"), ("secret_scan", None)]
        scan = next(c["why"] for c in res["checks"] if c["check"] == "secret_scan")
        assert "(1 accepted by the baseline .homeiq-secrets-baseline.json;" in scan
        # the stack's name is not a compose project: the role leaves it out
        assert run.task("Run every preflight check")["result"]["invocation"]["module_args"]["project_name"] is None
        leaked = h.secret_values_in(run.output + json.dumps(run.results), dict(literals, committed=committed, **env))
        assert leaked == [], leaked


@pytest.mark.parametrize("extra, expected", [
    ({"preflight_warn_checks": ["nonsense"]}, "unknown check 'nonsense' in warn"),
    ({"preflight_min_free_gb": "lots"}, "preflight_min_free_gb"),
    ({"preflight_project_src": "/nonexistent/homeiq"}, "project_src /nonexistent/homeiq does not exist"),
])
def test_bad_input_fails_with_one_line(playbook, extra, expected):
    run = playbook(REPO / "preflight.yml", inventory=REPO / "inventories" / "local", extra_vars=extra)
    assert run.rc == 2
    failed = [r for r in run.results if r["status"] == "failed"]
    assert failed and expected in failed[0]["result"]["msg"], failed
    assert "Traceback" not in run.output
