"""Shared test helpers: where things are, and a runner for real ansible-playbook processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / "collections"
BIN = Path(sys.executable).parent

# Unit tests import module_utils as ansible_collections.homeiq.deploy...; the link in
# collections/ makes the checkout importable under that name.
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    results: list = field(default_factory=list)

    def task(self, name, host=None):
        """The last result of the task called `name` (a role's task also by its bare name), on `host` if given."""
        found = [r for r in self.results if (r["task"] == name or r["task"].endswith(" : " + name))
                 and (host is None or r["host"] == host)]
        if not found:
            raise AssertionError(f"no result for task {name!r}; tasks seen: {sorted({r['task'] for r in self.results})}\n{self.stdout[-3000:]}")
        return found[-1]

    def by_action(self, action):
        return [r for r in self.results if r["action"].endswith(action)]

    @property
    def output(self):
        return self.stdout + self.stderr


def compose_version():
    """The (major, minor) of the Compose plugin the tests run (DOCKER_CONFIG picks the lane's plugin),
    for the few assertions on Compose's own wording, which changed between 2.26 and 2.40."""
    out = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True, check=True).stdout
    major, minor = out.strip().lstrip("v").split(".")[:2]
    return int(major), int(minor)


def ansible_env(extra=None):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_CALLBACK_PLUGINS": str(REPO / "tests" / "plugins" / "callback"),
        "ANSIBLE_CALLBACKS_ENABLED": "homeiq_results",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    })
    env.update(extra or {})
    return env


def run_playbook(playbook, tmp_path, inventory=None, extra_vars=None, check=False, diff=False,
                 verbosity=0, env=None, timeout=900, args=()):
    """Runs a real ansible-playbook process and returns its output and every task result."""
    results_file = Path(tmp_path) / f"results-{os.getpid()}-{len(list(Path(tmp_path).glob('results-*')))}.jsonl"
    cmd = [str(BIN / "ansible-playbook"), str(playbook)]
    cmd += ["-i", str(inventory or (REPO / "inventories" / "local"))]
    if extra_vars:
        vars_file = results_file.with_suffix(".vars.json")
        vars_file.write_text(json.dumps(extra_vars))
        cmd += ["-e", f"@{vars_file}"]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    cmd += list(args)
    proc = subprocess.run(cmd, cwd=REPO, env=ansible_env({"HOMEIQ_RESULTS_FILE": str(results_file), **(env or {})}),
                          capture_output=True, text=True, timeout=timeout, check=False)
    results = []
    if results_file.exists():
        results = [json.loads(line) for line in results_file.read_text().splitlines() if line.strip()]
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, results)


@pytest.fixture
def playbook(tmp_path):
    def _run(playbook_path, **kw):
        return run_playbook(playbook_path, tmp_path, **kw)
    return _run


@pytest.fixture(name="compose_version", scope="session")
def compose_version_fixture():
    return compose_version()
