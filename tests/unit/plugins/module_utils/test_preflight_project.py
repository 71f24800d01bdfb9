"""Env files, interpolation, the compose files read directly, and judging services (no engine)."""
from __future__ import annotations

import textwrap

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_project as proj


def test_env_file_syntax_as_compose_reads_it():
    text = textwrap.dedent("""\
        # comment
        export A=1
        B = two words  # trailing comment
        C='single ${A} kept'
        D="double ${A}\\nline"
        E=${A}-${MISSING:-dflt}
        F="multi
        line"
        EMPTY=
        HASH=a#b
        FROM_ENV
        NOT_IN_ENV
        """)
    env = proj.parse_env_text(text, lookup={"FROM_ENV": "outer"})
    assert env == {"A": "1", "B": "two words", "C": "single ${A} kept", "D": "double 1\nline", "E": "1-dflt",
                   "F": "multi\nline", "EMPTY": "", "HASH": "a#b", "FROM_ENV": "outer"}


@pytest.mark.parametrize("text, error", [
    ("GOOD=1\nthis is not an assignment\n", "line 2: not KEY=VALUE"),
    ("A='open\n", "line 1: unterminated single quote"),
    ('A="open\n', "line 1: unterminated double quote"),
])
def test_env_file_errors_name_the_line(text, error):
    with pytest.raises(proj.EnvFileError, match=error):
        proj.parse_env_text(text, source="x.env")


def test_read_env_file_missing(tmp_path):
    with pytest.raises(proj.EnvFileError, match="does not exist"):
        proj.read_env_file(tmp_path / "absent.env")


@pytest.mark.parametrize("value, expected", [
    ("${A}", "1"), ("$A", "1"), ("$$A", "$A"), ("${UNSET}", ""), ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"),
    ("${EMPTY-d}", ""), ("${UNSET-d}", "d"), ("${A:+set}", "set"), ("${UNSET:+set}", ""), ("${EMPTY+set}", "set"),
    ("${UNSET:-${A}}", "1"), ("x${A}y", "x1y"), (8080, 8080),
])
def test_interpolation(value, expected):
    assert proj.interpolate(value, {"A": "1", "EMPTY": ""}) == expected


def test_interpolation_collects_required_variables():
    missing = []
    assert proj.interpolate("${NEED:?set it}/${OK:?x}/${EMPTY?y}", {"OK": "1", "EMPTY": ""}, missing) == "/1/"
    assert missing == ["NEED"]


@pytest.mark.parametrize("entry, expected", [
    ("3000", []),
    ("8000:8000", [("", 8000, "tcp")]),
    ("127.0.0.1:8086:8086", [("127.0.0.1", 8086, "tcp")]),
    ("127.0.0.1::80", []),
    ("9090-9091:8080-8081", [("", 9090, "tcp"), ("", 9091, "tcp")]),
    ("6060:6060/udp", [("", 6060, "udp")]),
    ("[::1]:6000:6001", [("::1", 6000, "tcp")]),
    ({"target": 80, "published": "8080", "host_ip": "127.0.0.1", "protocol": "tcp"}, [("127.0.0.1", 8080, "tcp")]),
    ({"target": 80, "published": ""}, []),
    ({"target": 80}, []),
])
def test_port_entries(entry, expected):
    assert proj.parse_port_entry(entry) == expected


def test_published_ports_per_service():
    services = {"b": {"ports": ["127.0.0.1:81:80"]}, "a": {"ports": ["80:80", "90"]}, "c": {}}
    assert proj.published_ports(services) == [("a", "", 80, "tcp"), ("b", "127.0.0.1", 81, "tcp")]


@pytest.mark.parametrize("svc, state", [
    ({"healthcheck": {"test": ["CMD", "true"]}}, "declared"),
    ({"healthcheck": {"test": "curl -f localhost"}}, "declared"),
    ({"healthcheck": {"disable": True}}, "disabled"),
    ({"healthcheck": {"test": ["NONE"]}}, "disabled"),
    ({"healthcheck": {"interval": "2s"}}, None),
    ({}, None),
])
def test_healthcheck_state(svc, state):
    assert proj.healthcheck_state(svc) == state


def test_dockerfile_healthcheck(tmp_path):
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "Dockerfile").write_text("FROM x\nHEALTHCHECK --interval=5s CMD curl -f localhost\n")
    (tmp_path / "Dockerfile.none").write_text("FROM x\nHEALTHCHECK NONE\n")
    assert proj.dockerfile_healthcheck({"build": "svc"}, str(tmp_path))
    assert proj.dockerfile_healthcheck({"build": {"context": str(tmp_path / "svc")}}, str(tmp_path))
    assert not proj.dockerfile_healthcheck({"build": {"context": ".", "dockerfile": "Dockerfile.none"}}, str(tmp_path))
    assert not proj.dockerfile_healthcheck({"image": "x"}, str(tmp_path))


@pytest.mark.parametrize("svc, mem, cpu", [
    ({"deploy": {"resources": {"limits": {"memory": "33554432", "cpus": 0.25}}}}, "33554432", 0.25),
    ({"mem_limit": "64m", "cpus": 0.5}, "64m", 0.5),
    ({"mem_limit": "0", "cpu_quota": 50000}, None, 50000),
    ({"deploy": {"resources": {"reservations": {"memory": "1g"}}}}, None, None),
])
def test_limits(svc, mem, cpu):
    assert proj.memory_limit(svc) == mem
    assert proj.cpu_limit(svc) == cpu


def test_dependencies_of_every_kind():
    svc = {"depends_on": {"db": {"condition": "service_healthy"}, "cache": {"required": False}},
           "volumes_from": ["data:ro", "container:other"], "network_mode": "service:vpn"}
    assert proj.dependencies(svc) == [("db", True, "depends_on"), ("cache", False, "depends_on"),
                                      ("data", True, "volumes_from"), ("vpn", True, "network_mode")]
    assert proj.dependencies({"depends_on": ["a", "b"]}) == [("a", True, "depends_on"), ("b", True, "depends_on")]


def test_find_cycles_reports_each_once():
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["d"], "e": ["a"], "f": []}
    assert proj.find_cycles(graph) == [["a", "b", "c", "a"], ["d", "d"]]
    assert proj.find_cycles({"x": ["y"], "y": []}) == []


def test_raw_model_follows_includes_profiles_and_interpolation(tmp_path):
    (tmp_path / "domains").mkdir()
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        name: ${NAME:-rawproj}
        include:
          - domains/data.yaml
        services:
          api:
            image: x
            env_file: [api.env, {path: optional.env, required: false}]
            ports: ["127.0.0.1:${API_PORT:-8000}:8000"]
            depends_on: [db]
          debug:
            image: x
            profiles: [debug]
        """))
    (tmp_path / "domains" / "data.yaml").write_text("services:\n  db:\n    image: x\n    env_file: db.env\n")
    (tmp_path / "compose.override.yaml").write_text("services:\n  api:\n    depends_on: [cache]\n  cache:\n    image: x\n")
    (tmp_path / ".env").write_text("API_PORT=9001\n")
    project = proj.ComposeProject(tmp_path, docker_cli="/nonexistent/docker")
    raw = project.raw()
    assert raw.error is None
    assert sorted(raw.services) == ["api", "cache", "db", "debug"]
    assert sorted(raw.active_services()) == ["api", "cache", "db"]
    assert raw.services["api"]["ports"] == ["127.0.0.1:9001:8000"]
    assert set(proj.depends_items_dict(raw.services["api"]["depends_on"])) == {"db", "cache"}
    refs = sorted((s, p.replace(str(tmp_path), "."), r) for s, p, r in raw.env_file_refs())
    assert refs == [("api", "./api.env", True), ("api", "./optional.env", False), ("db", "./domains/db.env", True)]
    # Compose is not there (docker_cli points nowhere): the model comes from the files
    services, source, name = project.model()
    assert source == "files" and name == "rawproj" and sorted(services) == ["api", "cache", "db"]
    assert project.config()[1].startswith("'/nonexistent/docker' not found")


def test_raw_model_errors_are_one_line(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  api: [unclosed\n")
    raw = proj.ComposeProject(tmp_path).raw()
    assert "is not valid YAML" in raw.error and "\n" not in raw.error
    assert proj.ComposeProject(tmp_path / "nothing").raw().error.startswith("no compose file in")


def test_environment_wins_over_env_files_and_service_env_files_count(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  api:\n    image: x\n    env_file: svc.env\n")
    (tmp_path / "svc.env").write_text("SVC_TOKEN=from-service-file\nSHARED=service\n")
    (tmp_path / "p.env").write_text("SHARED=project\nONLY_FILE=1\n")
    project = proj.ComposeProject(tmp_path, env_files=["p.env"], environment={"ONLY_FILE": "2"})
    assert project.env()["ONLY_FILE"] == "2"
    deploy = project.deploy_env()
    assert deploy["SVC_TOKEN"] == "from-service-file" and deploy["SHARED"] == "project"
    assert project.defined_env() == {"SVC_TOKEN": "from-service-file", "SHARED": "project", "ONLY_FILE": "2"}
    assert project.show(str(tmp_path / "p.env")) == "p.env"
    assert project.show("/etc/hosts") == "/etc/hosts"
