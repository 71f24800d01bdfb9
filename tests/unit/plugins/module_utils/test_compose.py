"""Parsing of real Compose output (captured from Compose 2.26.1) and the CLI client's errors."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _compose as c

FIXTURES = Path(__file__).parent / "fixtures"

PS_LINES = (
    '{"ID":"6b12cc62aee8","Name":"exp-s1-1","Service":"s1","State":"running","Health":"healthy","Status":"Up 3 seconds (healthy)"}\n'
    '{"ID":"0aa1","Name":"exp-s2-1","Service":"s2","State":"exited","Health":"","Status":"Exited (1) 2 seconds ago"}\n'
)
PS_ARRAY = '[{"ID":"6b12cc62aee8","Service":"s1","State":"running"},{"ID":"0aa1","Service":"s2","State":"exited"}]'


@pytest.mark.parametrize("text, services", [
    (PS_LINES, ["s1", "s2"]),           # Compose >= 2.21: one object per line
    (PS_ARRAY, ["s1", "s2"]),           # older Compose v2: one JSON array
    ("", []),
    ("\n", []),
])
def test_parse_ps_output(text, services):
    assert [row["Service"] for row in c.parse_ps_output(text)] == services


def test_parse_ps_output_real_capture():
    rows = c.parse_ps_output((FIXTURES / "ps-compose-2.26-one.jsonl").read_text())
    assert len(rows) == 1
    assert rows[0]["Service"] == "s1" and rows[0]["State"] == "running" and rows[0]["Health"] == "healthy"


@pytest.mark.parametrize("text, expected", [
    ("2.26.1-4\n", (2, 26, 1)),
    ("v2.29.7", (2, 29, 7)),
    ("docker-compose version 1.29.2, build unknown", (1, 29, 2)),
    ("", None),
    ("nonsense", None),
])
def test_parse_version(text, expected):
    assert c.parse_version(text) == expected


@pytest.mark.parametrize("stderr, expected", [
    ("validating /p/compose.yaml: services.x.ports must be a list\n",
     "validating /p/compose.yaml: services.x.ports must be a list"),
    ("yaml: line 2: did not find expected node content\n", "yaml: line 2: did not find expected node content"),
    ("#5 [s1 2/2] RUN exit 1\n#5 ERROR: process \"/bin/sh -c exit 1\" did not complete successfully: exit code: 1\n"
     "------\nfailed to solve: process \"/bin/sh -c exit 1\" did not complete successfully: exit code: 1\n",
     'failed to solve: process "/bin/sh -c exit 1" did not complete successfully: exit code: 1'),
    ("\x1b[31mError\x1b[0m response from daemon: No such image: x\n", "Error response from daemon: No such image: x"),
    ("", "no output"),
])
def test_error_line(stderr, expected):
    assert c.error_line(stderr) == expected


def test_base_args_resolve_relative_files(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    cli = c.ComposeCLI(str(tmp_path), "p", files=["compose.yaml", "/abs/extra.yaml"], env_files=["release.env"],
                       profiles=["production"], override_file="/tmp/o.json")
    args = cli.base_args()
    assert args[:2] == ["docker", "compose"]
    assert "--project-directory" not in args            # Compose uses the first file's folder, as `-f` does
    assert args[args.index("--project-name") + 1] == "p"
    files = [args[i + 1] for i, a in enumerate(args) if a == "--file"]
    assert files == [str(tmp_path / "compose.yaml"), "/abs/extra.yaml", "/tmp/o.json"]
    assert args[args.index("--env-file") + 1] == str(tmp_path / "release.env")
    assert args[args.index("--profile") + 1] == "production"
    assert "/tmp/o.json" not in cli.base_args(with_override=False)


def _flags(args, flag):
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_argv_of_a_domain_file_run_from_the_checkout_root(tmp_path):
    """`docker compose -f domains/core/compose.yml --env-file .env --profile production` from the root."""
    cli = c.ComposeCLI(str(tmp_path), files=["domains/core/compose.yml"], env_files=[".env"], profiles=["production"])
    assert cli.base_args() == ["docker", "compose", "--file", str(tmp_path / "domains/core/compose.yml"),
                               "--env-file", str(tmp_path / ".env"), "--profile", "production"]
    assert cli.project_dir() == str(tmp_path / "domains" / "core")


def test_project_directory_only_when_given(tmp_path):
    cli = c.ComposeCLI(str(tmp_path), files=["domains/core/compose.yml"], project_directory=".")
    args = cli.base_args()
    assert _flags(args, "--project-directory") == [str(tmp_path)]
    assert cli.project_dir() == str(tmp_path)
    cli = c.ComposeCLI(str(tmp_path), files=["a/compose.yml"], project_directory="/elsewhere/p")
    assert _flags(cli.base_args(), "--project-directory") == ["/elsewhere/p"] and cli.project_dir() == "/elsewhere/p"
    cli = c.ComposeCLI(str(tmp_path), files=["/abs/dir/compose.yml"])
    assert cli.project_dir() == "/abs/dir"
    assert c.ComposeCLI(str(tmp_path)).project_dir() == str(tmp_path)


def test_override_needs_the_default_file(tmp_path):
    cli = c.ComposeCLI(str(tmp_path), override_file="/tmp/o.json")
    with pytest.raises(c.ComposeError, match="no compose file"):
        cli.base_args()
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    assert str(tmp_path / "docker-compose.yml") in cli.base_args()


@pytest.mark.parametrize("present, expected", [
    (["compose.yaml"], ["compose.yaml"]),
    (["compose.yaml", "compose.override.yaml"], ["compose.yaml", "compose.override.yaml"]),
    (["compose.yml", "compose.override.yml"], ["compose.yml", "compose.override.yml"]),
    (["docker-compose.yml", "docker-compose.override.yaml"], ["docker-compose.yml", "docker-compose.override.yaml"]),
    # Compose's order of preference, checked against Compose 2.26.1's own discovery
    (["docker-compose.yaml", "docker-compose.yml"], ["docker-compose.yml"]),
    (["compose.yaml", "compose.yml", "compose.override.yaml", "compose.override.yml"], ["compose.yaml", "compose.override.yml"]),
    (["compose.yaml", "docker-compose.override.yml", "docker-compose.override.yaml"], ["compose.yaml", "docker-compose.override.yml"]),
])
def test_default_files_are_composes_own(tmp_path, present, expected):
    for name in present:
        (tmp_path / name).write_text("services: {}\n")
    cli = c.ComposeCLI(str(tmp_path), override_file="/tmp/o.json")
    assert cli.default_files() == [str(tmp_path / n) for n in expected]
    assert _flags(cli.base_args(), "--file") == [str(tmp_path / n) for n in expected] + ["/tmp/o.json"]


def test_default_files_are_looked_for_in_the_named_project_directory(tmp_path):
    """With --project-directory and no -f, Compose looks for its files there, not in the working directory."""
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "compose.yml").write_text("services: {}\n")
    cli = c.ComposeCLI(str(tmp_path), project_directory="deploy", override_file="/tmp/o.json")
    assert cli.default_files() == [str(tmp_path / "deploy" / "compose.yml")]
    assert _flags(cli.base_args(), "--file") == [str(tmp_path / "deploy" / "compose.yml"), "/tmp/o.json"]


def test_compose_runs_from_project_src(tmp_path):
    src = tmp_path / "checkout"
    src.mkdir()
    cli = c.ComposeCLI(str(src), files=["domains/core/compose.yml"],
                       docker_bin=_fake_docker(tmp_path, 'pwd; echo "$@"'))
    out = cli.run(["config"]).stdout.splitlines()
    assert out[0] == str(src)
    assert out[1] == f"compose --file {src}/domains/core/compose.yml config"


def test_missing_project_src_is_one_line(tmp_path):
    cli = c.ComposeCLI(str(tmp_path / "gone"), docker_bin=_fake_docker(tmp_path, "echo never"))
    with pytest.raises(c.ComposeError, match=r"project_src .*gone does not exist or is not a directory"):
        cli.run(["config"])


def _fake_docker(tmp_path, script):
    """A stand-in `docker` binary for the version gate only: v1 and old v2 cannot be installed here."""
    path = tmp_path / "docker"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("script, message", [
    ("echo 'docker: unknown command: docker compose' >&2; exit 1", "Compose v2 is not installed"),
    ("echo 2.20.3", "Compose 2.20.3 is too old"),
])
def test_version_gate(tmp_path, script, message):
    cli = c.ComposeCLI(str(tmp_path), docker_bin=_fake_docker(tmp_path, script))
    with pytest.raises(c.ComposeError, match=message):
        cli.version()


def test_version_accepts_current(tmp_path):
    cli = c.ComposeCLI(str(tmp_path), docker_bin=_fake_docker(tmp_path, "echo 2.26.1-4"))
    assert cli.version() == (2, 26, 1)


def test_missing_docker_binary(tmp_path):
    cli = c.ComposeCLI(str(tmp_path), docker_bin=os.path.join(str(tmp_path), "nope"))
    with pytest.raises(c.ComposeError, match="not found"):
        cli.version()
