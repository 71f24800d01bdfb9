"""The Compose client's parsers fed with what two real Compose versions print on this machine.

fixtures/compose/<version>/ holds the output of Compose 2.26.1 (the machine's default plugin,
Debian trixie) and 2.40.3 (the `compat-compose` lane's plugin, Debian sid) for the project in
fixtures/compose/project/, captured by scripts/capture-compose-outputs (its header lists the files).
Each case reads one captured file through the parser the client uses for it, and also through
ComposeCLI itself with a stand-in `docker` that prints the captured file as Compose printed it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _compose as c
from ansible_collections.homeiq.deploy.plugins.module_utils._deploy import service_hash

FIXTURES = Path(__file__).parent / "fixtures" / "compose"
VERSIONS = ("2.26.1", "2.40.3")
PROJECT = "homeiq-capture"
SOURCE = str(FIXTURES / "project")             # the project the output is of
WORK = "/tmp/homeiq-compose-capture/project"   # where the capture ran it (the paths in the output)


def captured(version, name):
    return (FIXTURES / version / name).read_text()


class ByVersion(dict):
    """An expectation that differs between the versions: version -> value."""


def cases(table):
    """(version, *row) for every version and row; a ByVersion in a row gives that version's value."""
    out = []
    for version in VERSIONS:
        for row in table:
            out.append(pytest.param(version, *[v[version] if isinstance(v, ByVersion) else v for v in row],
                                    id=f"{version}-{row[0]}"))
    return out


def stand_in(tmp_path, version, name, rc=0):
    """A `docker` that prints one captured file (stdout, or stderr with a failing exit) and
    writes the arguments it was called with to argv.txt."""
    path = tmp_path / "docker"
    stream = ">&2" if rc else ""
    path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" > "{tmp_path}/argv.txt"\n'
                    f'cat "{FIXTURES / version / name}" {stream}\nexit {rc}\n')
    path.chmod(0o755)
    return str(path)


def argv(tmp_path):
    return (tmp_path / "argv.txt").read_text().split()


# ----- version --short --------------------------------------------------------------------------

@pytest.mark.parametrize("version, text, expected", [
    ("2.26.1", "2.26.1-4\n", (2, 26, 1)),    # Debian's build carries its revision
    ("2.40.3", "2.40.3-3\n", (2, 40, 3)),
])
def test_version(tmp_path, version, text, expected):
    assert captured(version, "version.txt") == text
    assert c.parse_version(text) == expected
    cli = c.ComposeCLI(SOURCE, docker_bin=stand_in(tmp_path, version, "version.txt"))
    assert cli.version() == expected
    assert argv(tmp_path)[-3:] == ["compose", "version", "--short"]


# ----- ps --all --format json -------------------------------------------------------------------

PS = [
    # file, service -> (State, Health, ExitCode), services with published ports -> [(host ip, target)]
    ("ps-0.jsonl", {}, {}),
    ("ps-1.jsonl", {"web": ("running", "healthy", 0)}, {"web": [("127.0.0.1", 8080)]}),
    ("ps-2.jsonl", {"web": ("running", "healthy", 0), "worker": ("running", "", 0)},
     {"web": [("127.0.0.1", 8080)], "worker": []}),
    ("ps-exited.jsonl", {"web": ("running", "healthy", 0), "worker": ("running", "", 0), "exits": ("exited", "", 3)},
     {"web": [("127.0.0.1", 8080)], "worker": [], "exits": []}),
    # After `up --wait --wait-timeout 15` of `gated`, whose dependency `slow` is not healthy in time:
    # 2.26.1 waited for `slow` to turn unhealthy (about 30 s, past the wait time); 2.40.3 stops at the
    # wait time, with `slow` still starting. `gated` is created and never started in both.
    ("ps-dependency.jsonl", ByVersion({
        "2.26.1": {"web": ("running", "healthy", 0), "worker": ("running", "", 0), "exits": ("exited", "", 3),
                   "gated": ("created", "", 0), "slow": ("running", "unhealthy", 0)},
        "2.40.3": {"web": ("running", "healthy", 0), "worker": ("running", "", 0), "exits": ("exited", "", 3),
                   "gated": ("created", "", 0), "slow": ("running", "starting", 0)}}),
     {"web": [("127.0.0.1", 8080)], "worker": [], "exits": [], "gated": [], "slow": []}),
]


@pytest.mark.parametrize("version, name, states, published", cases(PS))
def test_ps(tmp_path, version, name, states, published):
    text = captured(version, name)
    rows = c.parse_ps_output(text)
    assert {r["Service"]: (r["State"], r["Health"], r["ExitCode"]) for r in rows} == states
    for row in rows:
        assert row["Project"] == PROJECT and row["Name"] == f"{PROJECT}-{row['Service']}-1"
        assert f"com.docker.compose.version={version}" in row["Labels"].split(",")
        assert f"com.docker.compose.project.working_dir={WORK}" in row["Labels"].split(",")
        # A container without published ports: Publishers is null in 2.26.1 and [] in 2.40.3.
        ports = [(p["URL"], p["TargetPort"]) for p in row["Publishers"] or []]
        assert ports == published[row["Service"]]
        assert all(isinstance(p["PublishedPort"], int) and p["PublishedPort"] > 0 for p in row["Publishers"] or [])
    cli = c.ComposeCLI(SOURCE, PROJECT, docker_bin=stand_in(tmp_path, version, name))
    assert cli.ps() == rows
    assert argv(tmp_path)[-4:] == ["ps", "--all", "--format", "json"]


@pytest.mark.parametrize("version", VERSIONS)
def test_ps_of_an_empty_project_prints_nothing(version):
    """Neither version prints `[]` for a project without containers: the output is empty."""
    assert captured(version, "ps-0.jsonl") == ""


@pytest.mark.parametrize("version", VERSIONS)
def test_publishers_without_ports_differ(version):
    """The one difference between the two versions' ps output that a reader must allow for."""
    worker = next(r for r in c.parse_ps_output(captured(version, "ps-2.jsonl")) if r["Service"] == "worker")
    assert worker["Publishers"] == {"2.26.1": None, "2.40.3": []}[version]


# ----- config --format json ---------------------------------------------------------------------

CONFIG = [
    # file, services, web's environment (web.env + interpolation; optional.env absent), profiles of debug
    ("config.json", ["web", "worker"], {"WEB_GREETING": "hello", "WEB_MODE": "plain", "WEB_PORT": "8080"}, None),
    ("config-debug.json", ["debug", "web", "worker"], {"WEB_GREETING": "hello", "WEB_MODE": "plain", "WEB_PORT": "8080"},
     ["debug"]),
]


@pytest.mark.parametrize("version, name, services, web_env, debug_profiles", cases(CONFIG))
def test_config(tmp_path, version, name, services, web_env, debug_profiles):
    cli = c.ComposeCLI(SOURCE, PROJECT, docker_bin=stand_in(tmp_path, version, name))
    cfg = cli.config()
    assert argv(tmp_path)[-3:] == ["config", "--format", "json"]
    assert cfg["name"] == PROJECT
    assert sorted(cfg["services"]) == services          # the broken profile's services are not selected
    web, worker = cfg["services"]["web"], cfg["services"]["worker"]
    assert web["environment"] == web_env and "env_file" not in web
    # The included file's env_file is read from the included file's folder.
    assert worker["environment"] == {"WORKER_QUEUE": "jobs"} and "env_file" not in worker
    assert web["ports"] == [{"host_ip": "127.0.0.1", "mode": "ingress", "protocol": "tcp", "target": 8080}]
    assert (cfg["services"].get("debug") or {}).get("profiles") == debug_profiles


@pytest.mark.parametrize("name", ["config.json", "config-debug.json"])
def test_config_is_the_same_in_both_versions(name):
    """The deployment plan keys each container on service_hash() of its resolved definition: an
    upgrade from 2.26.1 to 2.40.3 must not make every service look changed."""
    old, new = (json.loads(captured(v, name)) for v in VERSIONS)
    assert old == new
    for svc in old["services"]:
        assert service_hash(old["services"][svc]) == service_hash(new["services"][svc]), svc


# ----- failures: the one line the client reports ------------------------------------------------

INVALID = "/tmp/homeiq-compose-capture/invalid/compose.yaml"
NO_ENV = f"env file {WORK}/web.env not found: stat {WORK}/web.env: no such file or directory"
ERRORS = [
    # file, the command that failed, the line ComposeError carries
    ("up-no-image.txt", ["up"], ByVersion({
        "2.26.1": "Error response from daemon: no such image: homeiq/absent:none: No such image: homeiq/absent:none",
        "2.40.3": "Error response from daemon: No such image: homeiq/absent:none"})),
    # No error word in it: the last line is the one that says what happened.
    ("up-exits.txt", ["up"], "container homeiq-capture-exits-1 exited (3)"),
    ("config-no-env.txt", ["config", "--format", "json"], NO_ENV),
    # The schema's wording changed: a check on Compose's message must allow for the version.
    ("config-invalid.txt", ["config", "--format", "json"], ByVersion({
        "2.26.1": f"validating {INVALID}: services.x.ports must be a list",
        "2.40.3": f"validating {INVALID}: services.x.ports must be a array"})),
    # A dependency not healthy within --wait-timeout. 2.40.3 ends with a line without an error word,
    # after the progress line " Container homeiq-capture-slow-1  Error": the client must report the
    # last line, not the progress line.
    ("up-dependency.txt", ["up"], ByVersion({
        "2.26.1": "dependency failed to start: container homeiq-capture-slow-1 is unhealthy",
        "2.40.3": "timeout waiting for dependencies"})),
]


@pytest.mark.parametrize("version, name, command, expected", cases(ERRORS))
def test_error_line(tmp_path, version, name, command, expected):
    text = captured(version, name)
    assert c.error_line(text) == expected
    assert expected in text.splitlines()
    cli = c.ComposeCLI(SOURCE, PROJECT, docker_bin=stand_in(tmp_path, version, name, rc=1))
    with pytest.raises(c.ComposeError) as err:
        cli.run(command)
    assert str(err.value) == expected
