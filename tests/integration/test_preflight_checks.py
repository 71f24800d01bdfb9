"""Every preflight check, passing and failing, against real things.

One real ansible-playbook run holds every case as a task of homeiq.deploy.preflight_check (with
`only` naming the check under test), so the engine, Compose, the HTTP servers, the tmpfs, the
port holders and the planted secrets are started once. Each case is then its own test.
"""
from __future__ import annotations

import contextlib
import json
import re
import sys
import subprocess
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "preflight"))
import preflight_helpers as h  # noqa: E402  pylint: disable=wrong-import-position
import preflight_services as services  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.homeiq.deploy.plugins.module_utils._secrets_scan import fingerprint  # noqa: E402

ROOT = h.load_root_conftest()
GOOD = h.COMPOSE / "good"
NO_HC = h.COMPOSE / "no_healthcheck"
NO_LIMITS = h.COMPOSE / "no_limits"
BAD_DEPS = h.COMPOSE / "bad_depends"
CYCLE = h.COMPOSE / "cycle"
INVALID = h.COMPOSE / "invalid"
REQUIRED_VAR = h.COMPOSE / "required_var"


class Case:
    def __init__(self, case_id, check, result, args, contains=(), details=(), task=None, before=(), check_mode=False,
                 lane=None):
        self.id = case_id
        self.check = check
        self.result = result
        self.args = args
        self.contains = list(contains)
        self.details = list(details)
        self.task = task or {}
        self.before = list(before)
        self.check_mode = check_mode
        self.lane = lane  # cases that depend on each other's order run on one worker, in order


def build_cases(w):
    t = w["tmp"]
    ha, influx, influx_down = w["ha"], w["influx"], w["influx_down"]
    closed = w["closed_port"]
    pid, comm, held_port = w["holder"]
    own_name = w["own_name"]
    v = w["planted"]
    nobody = {"become": True, "become_user": "nobody", "become_method": "ansible.builtin.su",
              "become_flags": "-s /bin/sh", "vars": {"ansible_python_interpreter": "/usr/bin/python3"}}
    no_sock = f"unix://{t}/no-engine.sock"
    gate_fail = {"name": "security_tests", "command": "echo 'FAILED tests/test_auth_security.py::test_token'; exit 3"}
    allow_all = [
        {"path": "app/*"},
        {"rule": "jwt"},
        {"path": "deploy/id_rsa", "rule": "private-key"},
        {"path": ".env.example"},
        {"fingerprint": fingerprint(v["AWS_KEY_ID"])},
        {"path": "config/settings.yaml", "rule": "assigned-secret"},
        {"path": "compose.yaml", "rule": "url-credentials"},
    ]
    # The passing cases on the good project share one set of options, so they share one task.
    good = {"project_src": GOOD, "env_files": [w["good_env"]], "env_example_files": ["project.env.example"],
            "required_env_vars": ["PF_API_TOKEN", "APP_MODE"], "home_assistant_url": ha.url,
            "home_assistant_token": w["ha_token"], "influxdb_url": influx.url, "influxdb_token": w["influx_token"],
            "influxdb_org": "homeiq", "influxdb_bucket": "home_assistant_events"}
    # Failing options that do not disturb each other share a task too: one run, many failures.
    bad = {"project_src": GOOD, "compose_min_version": "99.1.0", "network_timeout": 3,
           "network_hosts": ["ha.nonexistent.invalid:8123", f"127.0.0.1:{closed}", ha.url],
           "home_assistant_url": ha.url, "home_assistant_token": w["ha_wrong"],
           "influxdb_url": influx.url, "influxdb_token": w["influx_wrong"], "gates": [gate_fail]}
    down = {"project_src": GOOD, "home_assistant_url": f"http://127.0.0.1:{closed}", "home_assistant_token": w["ha_token"],
            "influxdb_url": f"http://127.0.0.1:{closed}", "influxdb_token": w["influx_token"]}
    C = Case
    return [
        # environment ---------------------------------------------------------------------
        C("engine-pass", "engine", "pass", good, ["answers at unix:///var/run/docker.sock", "Docker Engine"]),
        C("engine-pass-check-mode", "engine", "pass", good, ["answers"], check_mode=True),
        C("engine-fail-no-engine", "engine", "fail", {"project_src": GOOD, "docker_host": no_sock},
          [f"no answer from the engine at {no_sock}", "No such file or directory"]),
        C("engine_access-pass", "engine_access", "pass", good, ["user root (uid 0) can open /var/run/docker.sock"]),
        C("engine_access-fail-user-not-in-group", "engine_access", "fail", {"project_src": "/tmp"},
          ["user nobody (uid 65534)", "cannot open /var/run/docker.sock (owner root:docker, mode 660)",
           "add the user to group 'docker'"], task=nobody),
        C("engine_access-fail-no-socket", "engine_access", "fail", {"project_src": GOOD, "docker_host": no_sock},
          [f"no engine socket at {t}/no-engine.sock: the engine is not running"]),
        C("compose_version-pass", "compose_version", "pass", good, ["Compose 2.", " (>= 2.21.0)"]),
        C("compose_version-fail-too-old", "compose_version", "fail", bad,
          ["is older than the minimum 99.1.0: upgrade the Compose v2 plugin"]),
        C("compose_version-fail-no-cli", "compose_version", "fail", {"project_src": GOOD, "docker_cli": f"{t}/bin/docker"},
          [f"'{t}/bin/docker' not found: install the Docker CLI with the Compose v2 plugin"]),
        C("disk-pass", "disk", "pass", {"project_src": str(w["tmpfs"]), "min_free_gb": 0.02},
          ["at least 20 MB free", "project 34 MB"], details=["Docker data /var/lib/docker", f"project {w['tmpfs']}: 34 MB free"],
          lane=0),
        C("disk-fail", "disk", "fail", {"project_src": str(w["tmpfs"]), "min_free_gb": 0.02},
          [f"project {w['tmpfs']} has 8 MB free, needs 20 MB", "docker image prune"],
          before=[{"name": "Fill the tmpfs with 24 MiB", "ansible.builtin.command": f"fallocate -l 24M {w['tmpfs']}/fill",
                   "args": {"creates": f"{w['tmpfs']}/fill"}}], lane=0),
        C("network-pass", "network", "pass",
          {"project_src": GOOD, "network_hosts": [f"127.0.0.1:{ha.port}", f"localhost:{influx.port}", ha.url]},
          ["all 3 hosts resolve and accept connections"]),
        C("network-pass-derived-from-urls", "network", "pass", good,
          ["all 2 hosts"], details=[f"Home Assistant: 127.0.0.1:{ha.port} accepts", f"InfluxDB: 127.0.0.1:{influx.port} accepts"]),
        C("network-fail", "network", "fail", bad,
          ["2 of 5 hosts not reachable within 3s", "ha.nonexistent.invalid does not resolve",
           f"127.0.0.1:{closed} does not accept connections (connection refused)"]),
        C("env_files-pass", "env_files", "pass", good,
          ["2 env files present and readable", "good.env", "app.env"], details=["app.env (env_file of api): present"]),
        C("env_files-fail", "env_files", "fail",
          {"project_src": GOOD, "env_files": [f"{t}/missing.env", w["malformed_env"]]},
          [f"{t}/missing.env is missing", f"{w['malformed_env']} line 2: not KEY=VALUE"]),
        C("env_vars-pass", "env_vars", "pass", good,
          ["2 required variables, each set: PF_API_TOKEN, APP_MODE"]),
        C("env_vars-fail", "env_vars", "fail",
          {"project_src": GOOD, "env_files": [w["vars_env"]], "required_env_vars": ["PF_MISSING", "PF_EMPTY", "APP_MODE"]},
          ["not set: PF_MISSING", "empty: PF_EMPTY"]),
        C("env_vars-fail-compose-required", "env_vars", "fail", {"project_src": REQUIRED_VAR},
          ["required by the compose files (${VAR:?}) but not set: PF_REQUIRED_SETTING"]),
        C("ports-pass-free", "ports", "pass", good,
          ["1 published host port, each free"], details=[f"127.0.0.1:{w['free_port']}/tcp (api): free"]),
        C("ports-pass-own-containers", "ports", "pass",
          {"project_src": GOOD, "env_files": [w["own_env"]], "project_name": own_name},
          ["1 published host port, each free or held by this project's own containers (1 held by them)"],
          details=[f"127.0.0.1:{w['own_port']}/tcp (api): held by this project's container {own_name}-api-1"]),
        C("ports-fail-process", "ports", "fail", {"project_src": GOOD, "env_files": [w["held_env"]]},
          [f"127.0.0.1:{held_port}/tcp (api) is held by process {comm} (pid {pid})", "stop what holds them"]),
        C("ports-fail-other-project", "ports", "fail",
          {"project_src": GOOD, "env_files": [w["own_env"]], "project_name": "pfother"},
          [f"127.0.0.1:{w['own_port']}/tcp (api) is held by container {own_name}-api-1 (project {own_name})"]),
        # configuration -------------------------------------------------------------------
        C("compose_config-pass", "compose_config", "pass", good,
          ["Compose accepts the project 'pfgood': 2 services (profiles: none; env files: " + w["good_env"] + ")"]),
        C("compose_config-pass-profile-and-environment", "compose_config", "pass",
          {"project_src": REQUIRED_VAR, "environment": {"PF_REQUIRED_SETTING": "enabled-by-the-test"}}, ["1 service (profiles: none"]),
        C("compose_config-fail-schema", "compose_config", "fail", {"project_src": INVALID},
          ["Compose rejects the project", "services.api Additional property restart_policy is not allowed"
           if ROOT.compose_version() < (2, 40) else "services.api additional properties 'restart_policy' not allowed"]),
        C("compose_config-fail-missing-variable", "compose_config", "fail", {"project_src": REQUIRED_VAR},
          ["required variable PF_REQUIRED_SETTING is missing a value: PF_REQUIRED_SETTING must be set"]),
        C("healthchecks-pass", "healthchecks", "pass", good, ["2 services, each with a healthcheck"]),
        C("healthchecks-pass-exempt", "healthchecks", "pass",
          {"project_src": GOOD, "profiles": ["tools"], "healthcheck_exempt": ["migrate"]}, ["3 services, each with a healthcheck (1 exempt)"]),
        C("healthchecks-fail-profile-service", "healthchecks", "fail", {"project_src": GOOD, "profiles": ["tools"]},
          ["no healthcheck: migrate"]),
        C("healthchecks-fail", "healthchecks", "fail", {"project_src": NO_HC},
          ["no healthcheck: unchecked", "healthcheck disabled: disabled", "healthcheck_exempt"]),
        C("resource_limits-pass", "resource_limits", "pass", good, ["2 services, each with memory and CPU limits"]),
        C("resource_limits-fail", "resource_limits", "fail", {"project_src": NO_LIMITS},
          ["no memory limit: unlimited", "no CPU limit: memonly, unlimited"]),
        C("resource_limits-pass-exempt", "resource_limits", "pass",
          {"project_src": NO_LIMITS, "limits_exempt": ["memonly", "unlimited"]}, ["3 services, each with memory and CPU limits (2 exempt)"]),
        C("depends_on-pass", "depends_on", "pass", good, ["1 dependency between 2 services: all defined, no cycle"]),
        C("depends_on-fail-undefined", "depends_on", "fail", {"project_src": BAD_DEPS},
          ["web depends on undefined service 'ghost'",
           "api depends on 'debugger', which is only in profile(s) debug (not active)",
           "read from the compose files: Compose rejects the project"]),
        C("depends_on-fail-cycle", "depends_on", "fail", {"project_src": CYCLE},
          ["dependency cycle: a -> b -> c -> a", "dependency cycle: d -> d"]),
        C("tokens-pass", "tokens", "pass", good,
          ["4 tokens set, none a placeholder, known default or example value: PF_API_TOKEN, PF_SHARED_SECRET, "
           "Home Assistant token, InfluxDB token"]),
        C("tokens-fail", "tokens", "fail",
          {"project_src": GOOD, "env_files": [w["bad_tokens_env"]], "env_example_files": ["project.env.example"],
           "placeholder_values": ["homeiq-default-secret"]},
          ["PF_API_TOKEN is a known default or placeholder value", "PF_DB_PASSWORD is a <...> placeholder",
           "PF_SECRET_KEY is a run of x characters", "PF_AUTH_TOKEN is empty",
           "PF_SHARED_SECRET is the same value as in project.env.example",
           "PF_SESSION_SECRET is a value on the inventory's list of known defaults"]),
        C("tokens-fail-missing-ha-token", "tokens", "fail",
          {"project_src": GOOD, "home_assistant_url": ha.url, "home_assistant_token_env": "PF_HA_TOKEN"},
          ["PF_HA_TOKEN (Home Assistant token) is not set"]),
        C("home_assistant-pass", "home_assistant", "pass", good,
          [f"Home Assistant at {ha.url} accepts the token (API running.)"]),
        C("home_assistant-pass-token-from-env-file", "home_assistant", "pass",
          {"project_src": GOOD, "env_files": [w["ha_env"]], "home_assistant_url": ha.url + "/",
           "home_assistant_token_env": "PF_HA_TOKEN"}, ["accepts the token"]),
        C("home_assistant-fail-wrong-token", "home_assistant", "fail", bad,
          [f"Home Assistant at {ha.url} answers but rejects the token (401)", "not the host",
           "create a new long-lived access token"]),
        C("home_assistant-fail-host-down", "home_assistant", "fail", down,
          [f"Home Assistant at http://127.0.0.1:{closed} cannot be reached: connection refused"]),
        C("home_assistant-fail-name-does-not-resolve", "home_assistant", "fail",
          {"project_src": GOOD, "home_assistant_url": "http://ha.nonexistent.invalid:8123",
           "home_assistant_token": w["ha_token"]}, ["cannot be reached: the host name does not resolve"]),
        C("influxdb-pass", "influxdb", "pass", good,
          [f"InfluxDB v2.7.10 at {influx.url} is healthy and the token reads bucket 'home_assistant_events'"]),
        C("influxdb-fail-wrong-token", "influxdb", "fail", bad,
          ["is healthy, but it rejects the token (401): the token is wrong or revoked, not the host"]),
        C("influxdb-fail-unhealthy", "influxdb", "fail",
          {"project_src": GOOD, "influxdb_url": influx_down.url, "influxdb_token": w["influx_token"]},
          [f"InfluxDB at {influx_down.url} is not healthy: /health answered HTTP 503 status fail: storage engine is not ready"]),
        C("influxdb-fail-missing-bucket", "influxdb", "fail",
          {"project_src": GOOD, "influxdb_url": influx.url, "influxdb_token": w["influx_token"], "influxdb_bucket": "nope"},
          ["accepts the token, but bucket 'nope' is not found or not readable with it"]),
        C("influxdb-fail-host-down", "influxdb", "fail", down,
          ["cannot be reached: connection refused"]),
        # security ------------------------------------------------------------------------
        C("secret_scan-fail", "secret_scan", "fail", {"project_src": str(w["tree"])},
          ["8 possible credential(s) committed in 7 file(s)", "move them to env files or a vault"]),
        C("secret_scan-fail-check-mode", "secret_scan", "fail", {"project_src": str(w["tree"])},
          ["8 possible credential(s)"], check_mode=True),
        C("secret_scan-pass-allowed", "secret_scan", "pass", {"project_src": str(w["tree"]), "secret_scan_allow": allow_all},
          ["no committed credentials in 8 files (8 allowed)"]),
        C("secret_scan-pass-clean", "secret_scan", "pass", {"project_src": CYCLE}, ["no committed credentials in 1 file"]),
        C("gates-pass", "gate:unit_tests", "pass",
          {"project_src": GOOD, "gates": [{"name": "unit_tests", "command": "python3 -c 'print(\"12 passed\")'"}]},
          ["passed (exit 0 after"], details=["12 passed"]),
        C("gates-fail", "gate:security_tests", "fail", bad,
          ["failed (exit 3 after", "FAILED tests/test_auth_security.py::test_token"]),
        C("gates-fail-check-mode", "gate:security_tests", "fail", {"project_src": GOOD, "gates": [gate_fail]},
          ["failed (exit 3 after"], check_mode=True),
        C("gates-warn", "gate:security_tests", "warn", {"project_src": GOOD, "gates": [gate_fail], "warn": ["gates"]},
          ["failed (exit 3 after"]),
        C("gates-fail-timeout", "gate:slow", "fail",
          {"project_src": GOOD, "gates": [{"name": "slow", "command": "echo started; sleep 30", "timeout": 1}]},
          ["failed (did not finish after 1.", "(stopped after 1s)"]),
    ]


CASE_IDS = [
    "engine-pass", "engine-pass-check-mode", "engine-fail-no-engine", "engine_access-pass",
    "engine_access-fail-user-not-in-group", "engine_access-fail-no-socket", "compose_version-pass",
    "compose_version-fail-too-old", "compose_version-fail-no-cli", "disk-pass", "disk-fail", "network-pass",
    "network-pass-derived-from-urls", "network-fail", "env_files-pass", "env_files-fail", "env_vars-pass",
    "env_vars-fail", "env_vars-fail-compose-required", "ports-pass-free", "ports-pass-own-containers",
    "ports-fail-process", "ports-fail-other-project", "compose_config-pass",
    "compose_config-pass-profile-and-environment", "compose_config-fail-schema",
    "compose_config-fail-missing-variable", "healthchecks-pass", "healthchecks-pass-exempt",
    "healthchecks-fail-profile-service", "healthchecks-fail", "resource_limits-pass", "resource_limits-fail",
    "resource_limits-pass-exempt", "depends_on-pass", "depends_on-fail-undefined", "depends_on-fail-cycle",
    "tokens-pass", "tokens-fail", "tokens-fail-missing-ha-token", "home_assistant-pass",
    "home_assistant-pass-token-from-env-file", "home_assistant-fail-wrong-token", "home_assistant-fail-host-down",
    "home_assistant-fail-name-does-not-resolve", "influxdb-pass", "influxdb-fail-wrong-token",
    "influxdb-fail-unhealthy", "influxdb-fail-missing-bucket", "influxdb-fail-host-down", "secret_scan-fail",
    "secret_scan-fail-check-mode", "secret_scan-pass-allowed", "secret_scan-pass-clean", "gates-pass", "gates-fail",
    "gates-fail-check-mode", "gates-warn", "gates-fail-timeout",
]


def _plain(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


WORKERS = 3  # inventory hosts (all this machine) that run the cases side by side


def _playbook(cases, folder):
    """One task per distinct set of options: cases that differ only in their check share a task
    (its `only` lists their checks). The tasks are dealt to WORKERS hosts, each running its own
    task file under the free strategy. Returns (plays, {case id: (host, task name)})."""
    groups = {}
    order = []
    for case in cases:
        key = json.dumps([_plain(case.args), case.check_mode, case.task, case.before], sort_keys=True)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(case)
    files = [[] for _i in range(WORKERS)]
    where = {}
    dealt = 0
    for key in order:
        members = groups[key]
        first = members[0]
        if first.lane is not None:
            host = first.lane
        else:
            host = dealt % WORKERS
            dealt += 1
        files[host].extend(first.before)
        only = sorted({("gates" if c.check.startswith("gate:") else c.check) for c in members})
        args = _plain(first.args)
        args.update({"only": only, "fail_on_failure": False})
        name = "case " + " + ".join(c.id for c in members)
        task = {"name": name, "homeiq.deploy.preflight_check": args}
        if first.check_mode:
            task["check_mode"] = True
        task.update(first.task)
        files[host].append(task)
        for c in members:
            where[c.id] = (f"worker{host}", name)
    for host, tasks in enumerate(files):
        (Path(folder) / f"cases-worker{host}.yml").write_text(yaml.safe_dump(tasks, sort_keys=False))
    plays = [{"name": "Preflight cases", "hosts": "all", "gather_facts": False, "strategy": "ansible.builtin.free",
              "tasks": [{"name": "Run this worker's cases",
                         "ansible.builtin.include_tasks": str(Path(folder) / "cases-{{ inventory_hostname }}.yml")}]}]
    return plays, where


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    t = tmp_path_factory.mktemp("preflight-cases")
    with contextlib.ExitStack() as stack:
        w = {"tmp": t}
        w["ha_token"], w["ha_wrong"] = "ha-" + h.rand(40), "ha-" + h.rand(40)
        w["influx_token"], w["influx_wrong"] = "ix-" + h.rand(40), "ix-" + h.rand(40)
        w["ha"] = services.home_assistant(w["ha_token"])
        stack.callback(w["ha"].stop)
        w["influx"] = services.influxdb(w["influx_token"])
        stack.callback(w["influx"].stop)
        w["influx_down"] = services.influxdb(w["influx_token"], healthy=False)
        stack.callback(w["influx_down"].stop)
        w["closed_port"] = h.free_port()
        w["tmpfs"] = stack.enter_context(h.tmpfs("32m"))
        held = h.free_port()
        pid, comm = stack.enter_context(h.port_holder(held))
        w["holder"] = (pid, comm, held)
        w["free_port"] = h.free_port()
        w["own_port"] = h.free_port()
        w["api_token"], w["shared_secret"] = "tok-" + h.rand(32), "shs-" + h.rand(24)
        w["good_env"] = h.write_env(t / "good.env", {"PF_API_PORT": w["free_port"], "PF_API_TOKEN": w["api_token"],
                                                     "PF_SHARED_SECRET": w["shared_secret"]})
        w["own_env"] = h.write_env(t / "own.env", {"PF_API_PORT": w["own_port"]})
        w["held_env"] = h.write_env(t / "held.env", {"PF_API_PORT": held})
        w["vars_env"] = h.write_env(t / "vars.env", {"PF_EMPTY": ""})
        w["ha_env"] = h.write_env(t / "ha.env", {"PF_HA_TOKEN": w["ha_token"]})
        w["bad_tokens_env"] = h.write_env(t / "bad-tokens.env", {
            "PF_API_TOKEN": "changeme", "PF_DB_PASSWORD": "<your-db-password>", "PF_SECRET_KEY": "xxxxxxxx",
            "PF_AUTH_TOKEN": "", "PF_SHARED_SECRET": "sh4red-default-9c1f7e", "PF_SESSION_SECRET": "HomeIQ-Default-Secret"})
        malformed = t / "malformed.env"
        malformed.write_text("OK=1\nthis line is not an assignment\n")
        w["malformed_env"] = str(malformed)
        w["tree"] = t / "tree"
        w["planted"] = h.materialize_secrets_tree(w["tree"])
        w["own_name"] = stack.enter_context(h.compose_up(GOOD, w["own_env"]))

        cases = build_cases(w)
        plays, w["task_of"] = _playbook(cases, t)
        book = t / "cases.yml"
        book.write_text(yaml.safe_dump(plays, sort_keys=False))
        inventory = h.local_inventory(t / "inventory.yml", [f"worker{i}" for i in range(WORKERS)])
        run = ROOT.run_playbook(book, t, inventory=inventory, env={"ANSIBLE_INJECT_INVOCATION": "1"}, timeout=600)
        w["run"] = run
        w["cases"] = {c.id: c for c in cases}
        yield w


def task(world, case_id):
    host, name = world["task_of"][case_id]
    return world["run"].task(name, host=host)


def test_case_list_is_complete(world):
    assert list(world["cases"]) == CASE_IDS
    assert world["run"].rc == 0, world["run"].output[-4000:]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_check(world, case_id):
    case = world["cases"][case_id]
    rec = world["run"].task(world["task_of"][case_id][1], host=world["task_of"][case_id][0])
    assert rec["status"] == "ok", rec
    res = rec["result"]
    assert res["changed"] is False
    entries = [c for c in res["checks"] if c["check"] == case.check]
    assert len(entries) == 1, res["summary"]
    entry = entries[0]
    assert entry["result"] == case.result, entry
    for text in case.contains:
        assert text in entry["why"], f"{text!r} not in {entry['why']!r}"
    details = "\n".join(entry["details"])
    for text in case.details:
        assert text in details, f"{text!r} not in {details!r}"
    line = next(s for s in res["summary"] if s.split()[1] == case.check + ":")
    assert line.startswith(case.result.upper())
    # only the selected checks ran
    only = res["invocation"]["module_args"]["only"]
    assert all(c["check"] in only or (c["check"].startswith("gate:") and "gates" in only) for c in res["checks"])
    if case.result == "fail":
        assert case.check in res["failed_checks"] and case.check in res["msg"]
    elif case.result == "warn":
        assert case.check in res["warned_checks"] and case.check not in res["failed_checks"]
    else:
        assert case.check not in res["failed_checks"] + res["warned_checks"]


def test_disk_fail_saw_the_filled_tmpfs(world):
    """The free space of the tmpfs is what the test made it: about 34 MB before, 8 MB after 24 MiB."""
    before = task(world, "disk-pass")["result"]["checks"][0]
    after = task(world, "disk-fail")["result"]["checks"][0]
    assert re.search(r"project \S+: 3[34] MB free", "\n".join(before["details"]))
    assert re.search(r"project \S+: [89] MB free", "\n".join(after["details"]))


def test_secret_scan_reports_every_planted_secret_by_file_and_line(world):
    entry = task(world, "secret_scan-fail")["result"]["checks"][0]
    found = set()
    for d in entry["details"]:
        m = re.match(r"(\S+):(\d+): (.+?) (\S+\*+\S*|-----BEGIN \.\.\. PRIVATE KEY----- \*+) \(fingerprint ([0-9a-f]{12})\)$", d)
        assert m, d
        found.add((m.group(1), int(m.group(2)), m.group(3)))
    assert found == h.EXPECTED_FINDINGS
    # the references, placeholders and expressions next to them are not findings
    assert not any(d.startswith(("config/settings.yaml:6", "compose.yaml:7", "app/client.py:5", ".env.example:3",
                                 "app/client.py:7", "README.md")) for d in entry["details"])


def test_no_secret_in_any_result_or_output(world):
    run = world["run"]
    planted = {k: world["planted"][k] for k in h.SECRET_KEYS}
    planted.update({k: world[k] for k in ("ha_token", "ha_wrong", "influx_token", "influx_wrong", "api_token",
                                          "shared_secret")})
    text = run.output + json.dumps(run.results)
    assert h.secret_values_in(text, planted) == []
    # the invocation is there (ANSIBLE_INJECT_INVOCATION=1) and masks the token options
    inv = task(world, "home_assistant-pass")["result"]["invocation"]["module_args"]
    assert inv["home_assistant_token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    # the servers did receive the tokens: the checks really sent them
    assert f"Bearer {world['ha_token']}" in world["ha"].seen_auth
    assert f"Bearer {world['ha_wrong']}" in world["ha"].seen_auth
    assert f"Token {world['influx_wrong']}" in world["influx"].seen_auth


def test_gate_commands_ran_in_check_mode(world):
    res = task(world, "gates-fail-check-mode")["result"]
    assert "FAILED tests/test_auth_security.py::test_token" in "\n".join(res["checks"][0]["details"])


# --- a HomeIQ-shaped checkout, run from its root ---------------------------------------------------

DEMO = ROOT.REPO / "examples" / "homeiq-demo"
DEMO_DOMAIN = DEMO / "domains" / "core-platform" / "compose.yml"
PATH_CHECKS = ["env_files", "env_vars", "ports", "compose_config", "mounts", "healthchecks", "resource_limits",
               "depends_on", "tokens"]


def _pf(name, **args):
    args.setdefault("fail_on_failure", False)
    return {"name": name, "homeiq.deploy.preflight_check": _plain(args)}


@pytest.fixture(scope="module")
def homeiq(tmp_path_factory):
    """One ansible-playbook run (at -vvv, module arguments in the output) over HomeIQ-shaped trees:
    domains/core/compose.yml reaching ../../.env and ../../infrastructure, with committed defaults."""
    t = tmp_path_factory.mktemp("preflight-homeiq")
    w = {"tmp": t, "port": h.free_port()}
    real = {"SESSION_SECRET": "ss-" + h.rand(24), "ADMIN_API_KEY": "ak-" + h.rand(24), "HOMEIQ_API_PORT": w["port"]}
    w["pg_password"] = "pw-" + h.rand(24)
    w["paths"] = t / "paths"  # .env with every secret, starting with a UTF-8 BOM
    w["literals"] = h.materialize_homeiq_tree(w["paths"], env=dict(real, **{"\ufeff": 1, "POSTGRES_PASSWORD": w["pg_password"]}))
    w["nopg"] = t / "nopg"  # .env without POSTGRES_PASSWORD: compose falls back to the committed default
    h.materialize_homeiq_tree(w["nopg"], env=real, values=w["literals"])
    # committed credentials for the baseline: two accepted, then a tree where lines moved and one is new
    w["s1"], w["s2"], w["s3"] = "Pw" + h.rand(20), "Tk" + h.rand(24), "Nw" + h.rand(20)
    w["scan1"], w["scan2"] = t / "scan1", t / "scan2"
    for tree in (w["scan1"], w["scan2"]):
        h.materialize_homeiq_tree(tree, env=dict(real, POSTGRES_PASSWORD=w["pg_password"]), values=w["literals"])
        (tree / "infrastructure" / "legacy.yaml").write_text(f"legacy:\n  db_password: {w['s1']}\n")
        (tree / "domains" / "core" / "api" / "settings.py").write_text(f'API_TOKEN = "{w["s2"]}"\n')
    (w["scan2"] / "infrastructure" / "legacy.yaml").write_text(f"# moved down\n\nlegacy:\n  db_password: {w['s1']}\n")
    (w["scan2"] / "infrastructure" / "smtp.ini").write_text(f"[smtp]\nsmtp_password = {w['s3']}\n")
    core = ["domains/core/compose.yml"]
    scan = {"only": ["secret_scan"]}
    baseline = w["scan1"] / ".homeiq-secrets-baseline.json"
    tasks = [
        _pf("paths", project_src=w["paths"], files=core, env_files=[".env"], only=PATH_CHECKS),
        _pf("paths-no-env-file", project_src=w["paths"], files=core, only=["env_files", "compose_config", "mounts",
                                                                           "healthchecks"]),
        _pf("committed-default", project_src=w["nopg"], files=core, env_files=[".env"], only=["tokens", "compose_config"]),
        _pf("stack", project_src=w["nopg"], only=["engine", "compose_config", "mounts", "tokens"], projects=[
            {"name": "pfhq-core", "files": core, "env_files": [".env"]},
            {"name": "pfhq-web", "files": ["domains/web/compose.yml"], "env_files": [".env"]}]),
        _pf("scan-without-baseline", project_src=w["scan1"], **scan),
        dict(_pf("write-baseline-check-mode", project_src=w["scan1"], secret_scan_write_baseline=True, **scan), check_mode=True),
        {"name": "baseline after check mode", "ansible.builtin.stat": {"path": str(baseline)}},
        _pf("write-baseline", project_src=w["scan1"], secret_scan_write_baseline=True, **scan),
        _pf("write-baseline-again", project_src=w["scan1"], secret_scan_write_baseline=True, **scan),
        _pf("scan-with-baseline", project_src=w["scan1"], **scan),
        {"name": "commit the baseline to the moved tree", "ansible.builtin.copy": {
            "src": str(baseline), "dest": str(w["scan2"] / baseline.name), "remote_src": True, "mode": "0644"}},
        _pf("scan-one-new-finding", project_src=w["scan2"], **scan),
        dict(_pf("min-version-below-client", project_src=w["paths"], compose_min_version="2.20.0", only=["compose_version"]),
             ignore_errors=True),
        _pf("demo-domain", project_src=DEMO, files=[str(DEMO_DOMAIN.relative_to(DEMO))], env_files=[".env"],
            only=["env_files", "compose_config", "mounts", "healthchecks", "resource_limits", "depends_on", "tokens"]),
    ]
    book = t / "homeiq.yml"
    book.write_text(yaml.safe_dump([{"name": "HomeIQ-shaped preflight", "hosts": "all", "gather_facts": False,
                                     "tasks": tasks}], sort_keys=False))
    inventory = h.local_inventory(t / "inventory.yml")
    w["run"] = ROOT.run_playbook(book, t, inventory=inventory, verbosity=3, env={"ANSIBLE_INJECT_INVOCATION": "1"},
                                 timeout=600)
    yield w


def _result(w, name):
    rec = w["run"].task(name)
    assert rec["status"] in ("ok", "changed"), rec
    return rec["result"]


def _by_check(res):
    return {(c["check"], c.get("project")): c for c in res["checks"]}


def test_homeiq_run_finished(homeiq):
    assert homeiq["run"].rc == 0, homeiq["run"].output[-4000:]


def test_domain_file_paths_pass_exactly_as_compose_accepts_them(homeiq):
    """From the checkout's root, `docker compose -f domains/core/compose.yml` finds ../../.env and
    ../../infrastructure; preflight does too, with and without --env-file (and a BOM in .env)."""
    root = homeiq["paths"]
    for extra in (["--env-file", ".env"], []):
        proc = subprocess.run(["docker", "compose", "-f", "domains/core/compose.yml", *extra, "config", "--format", "json"],
                              cwd=root, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        model = json.loads(proc.stdout)
        sources = {v["source"] for s in model["services"].values() for v in s.get("volumes", []) if v["type"] == "bind"}
        assert sources == {str(root / "infrastructure" / "db" / "init.sql"), str(root / "infrastructure" / "api")}
    res = _result(homeiq, "paths")
    by = _by_check(res)
    assert res["failed_checks"] == [], res["summary"]
    assert by[("env_files", None)]["why"] == "1 env file present and readable: .env"
    assert by[("compose_config", None)]["why"] == (
        "Compose accepts the project 'pfhomeiq-core': 2 services (profiles: none; env files: .env)")
    assert by[("mounts", None)]["why"] == "2 bind mounts, each source present"
    assert {"db: infrastructure/db/init.sql -> /docker-entrypoint-initdb.d/init.sql",
            "api: infrastructure/api -> /etc/api"} == set(by[("mounts", None)]["details"])
    assert by[("healthchecks", None)]["result"] == "pass"  # the api's HEALTHCHECK is in domains/core/api/Dockerfile
    assert by[("ports", None)]["details"] == [f"127.0.0.1:{homeiq['port']}/tcp (api): free"]
    assert by[("tokens", None)]["why"].startswith("3 tokens set") and "POSTGRES_PASSWORD" in by[("tokens", None)]["why"]
    res = _result(homeiq, "paths-no-env-file")
    assert res["failed_checks"] == [], res["summary"]
    assert "env files: none" in _by_check(res)[("compose_config", None)]["why"]


def test_committed_default_fails_tokens_naming_variable_file_and_line_never_the_value(homeiq):
    res = _result(homeiq, "committed-default")
    by = _by_check(res)
    assert by[("compose_config", None)]["result"] == "pass"
    tokens = by[("tokens", None)]
    assert tokens["result"] == "fail"
    assert ("POSTGRES_PASSWORD is not set in env file(s) .env and the environment, so domains/core/compose.yml line 11 "
            "uses the default committed there (********): set POSTGRES_PASSWORD in .env") in tokens["why"]
    # SESSION_SECRET is set, so its nested ${FALLBACK_SECRET:-...} default never applies
    assert "SESSION_SECRET" not in tokens["why"] and "FALLBACK_SECRET" not in tokens["why"]
    # neither the committed literals nor the real secrets appear anywhere, at -vvv with the invocation
    run = homeiq["run"]
    text = run.output + json.dumps(run.results)
    assert "module_args" in run.output
    leaked = h.secret_values_in(text, dict(homeiq["literals"], pg=homeiq["pg_password"], s1=homeiq["s1"], s2=homeiq["s2"],
                                           s3=homeiq["s3"]))
    assert leaked == [], leaked


def test_stack_checks_each_project_and_the_host_once(homeiq):
    res = _result(homeiq, "stack")
    assert [(c["check"], c.get("project"), c["result"]) for c in res["checks"]] == [
        ("engine", None, "pass"),
        ("compose_config", "pfhq-core", "pass"), ("compose_config", "pfhq-web", "pass"),
        ("mounts", "pfhq-core", "pass"), ("mounts", "pfhq-web", "pass"),
        ("tokens", "pfhq-core", "fail"), ("tokens", "pfhq-web", "pass")]
    assert res["failed_checks"] == ["tokens [pfhq-core]"] and res["projects"] == ["pfhq-core", "pfhq-web"]
    assert "Compose accepts the project 'pfhq-web': 1 service" in _by_check(res)[("compose_config", "pfhq-web")]["why"]
    assert any(s.startswith("FAIL  tokens [pfhq-core]: POSTGRES_PASSWORD is not set") for s in res["summary"])


def test_secret_scan_baseline_accepts_known_findings_and_fails_a_new_one(homeiq):
    first = _result(homeiq, "scan-without-baseline")["checks"][0]
    assert first["result"] == "fail" and first["why"].startswith("2 possible credential(s) committed in 2 file(s)")
    # the example file's placeholders are no findings
    assert not any(d.startswith(".env.example") for d in first["details"]), first["details"]
    dry = _result(homeiq, "write-baseline-check-mode")
    assert dry["changed"] is True and "would be written: 2 findings accepted by it" in dry["checks"][0]["why"]
    assert homeiq["run"].task("baseline after check mode")["result"]["stat"]["exists"] is False
    wrote = _result(homeiq, "write-baseline")
    assert wrote["changed"] is True and "baseline .homeiq-secrets-baseline.json written: 2 findings" in wrote["checks"][0]["why"]
    assert _result(homeiq, "write-baseline-again")["changed"] is False
    text = (homeiq["scan1"] / ".homeiq-secrets-baseline.json").read_text()
    assert homeiq["s1"] not in text and homeiq["s2"] not in text
    accepted = _result(homeiq, "scan-with-baseline")["checks"][0]
    assert accepted["result"] == "pass"
    assert accepted["why"].startswith("no new committed credentials in ")
    assert "(2 accepted by the baseline .homeiq-secrets-baseline.json;" in accepted["why"]
    new = _result(homeiq, "scan-one-new-finding")["checks"][0]
    assert new["result"] == "fail"
    assert new["why"].startswith("1 new possible credential(s) committed in 1 file(s): infrastructure/smtp.ini:2 "
                                 "assigned-secret ********"), new["why"]
    assert "2 accepted by the baseline" in new["why"]
    assert not [d for d in new["details"] if "accepted" not in d and "legacy.yaml" in d]


def test_compose_min_version_below_the_client_minimum_says_which_applies(homeiq):
    rec = homeiq["run"].task("min-version-below-client")
    assert rec["status"] == "ignored"  # it failed, under ignore_errors
    assert rec["result"]["msg"] == ("compose_min_version 2.20.0 is below 2.21.0, the lowest Compose this collection works "
                                    "with (its Compose client needs 2.21.0): set 2.21.0 or higher")


def test_demo_domain_from_the_demo_root(homeiq):
    res = _result(homeiq, "demo-domain")
    assert res["failed_checks"] == [], res["summary"]
    by = _by_check(res)
    assert by[("env_files", None)]["why"] == "1 env file present and readable: .env"
    assert by[("mounts", None)]["result"] == "pass"
    assert "infrastructure/influxdb/config.yml" in "\n".join(by[("mounts", None)]["details"])
