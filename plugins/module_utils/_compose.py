# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: the Compose v2 CLI client.

No SDK does Compose, so this runs `docker compose` and reads its machine-readable output
(`config --format json`, `config --hash`, `ps --format json`, `version --short`) rather than
its progress text. Every failure is one ComposeError carrying Compose's own message.
"""
from __future__ import annotations

import json
import os
import re
import subprocess

MIN_COMPOSE_VERSION = (2, 21, 0)

_ERROR_HINTS = re.compile(r"(error|failed|invalid|not found|no such|unknown|denied|cannot)", re.I)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class ComposeError(Exception):
    """A `docker compose` call failed; the message is Compose's own, on one line."""


def parse_version(text):
    """'v2.26.1-4' or '2.26.1' -> (2, 26, 1); None when it is not a version."""
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(x) for x in m.groups()) if m else None


def parse_ps_output(text):
    """`ps --format json` prints one object per line since 2.21 and a JSON array before."""
    text = (text or "").strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def error_line(stderr, stdout=""):
    """The line of Compose's output that says what went wrong, stripped of colour and noise."""
    lines = [_ANSI.sub("", ln).strip() for ln in (stderr or "").splitlines() + (stdout or "").splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return "no output"
    for ln in reversed(lines):
        if _ERROR_HINTS.search(ln):
            return ln
    return lines[-1]


class ComposeCLI:
    """Runs `docker compose` for one project with its files, env files and profiles."""

    def __init__(self, project_src, project_name=None, files=None, env_files=None, profiles=None,
                 override_file=None, docker_bin="docker", environ=None):
        self.project_src = project_src
        self.project_name = project_name
        self.files = list(files or [])
        self.env_files = list(env_files or [])
        self.profiles = list(profiles or [])
        self.override_file = override_file
        self.docker_bin = docker_bin
        self.environ = dict(os.environ if environ is None else environ)

    def base_args(self, with_override=True):
        args = [self.docker_bin, "compose", "--project-directory", self.project_src]
        if self.project_name:
            args += ["--project-name", self.project_name]
        for f in self.files:
            args += ["--file", f if os.path.isabs(f) else os.path.join(self.project_src, f)]
        if with_override and self.override_file:
            if not self.files:
                args += ["--file", self.default_file()]
            args += ["--file", self.override_file]
        for e in self.env_files:
            args += ["--env-file", e if os.path.isabs(e) else os.path.join(self.project_src, e)]
        for p in self.profiles:
            args += ["--profile", p]
        return args

    def default_file(self):
        """The file Compose would pick on its own; needed once an override file is added."""
        for name in ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"):
            path = os.path.join(self.project_src, name)
            if os.path.exists(path):
                return path
        raise ComposeError(f"no compose file in {self.project_src}: add compose.yaml or name files with `files`")

    def run(self, args, with_override=True, timeout=None, check=True):
        cmd = self.base_args(with_override) + list(args)
        try:
            # plain Python, shared by several modules and tested without AnsibleModule: no run_command here
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.environ,  # pylint: disable=ansible-bad-function
                                  stdin=subprocess.DEVNULL, check=False)
        except FileNotFoundError:
            raise ComposeError(f"'{self.docker_bin}' not found: install the Docker CLI with the Compose v2 plugin")
        except subprocess.TimeoutExpired:
            raise ComposeError(f"`docker compose {args[0]}` did not finish within {timeout} s")
        if check and proc.returncode != 0:
            raise ComposeError(error_line(proc.stderr, proc.stdout))
        return proc

    def version(self):
        """The Compose v2 version tuple; ComposeError when Compose is v1, missing or too old."""
        try:
            proc = subprocess.run([self.docker_bin, "compose", "version", "--short"], capture_output=True,  # pylint: disable=ansible-bad-function
                                  text=True, env=self.environ, stdin=subprocess.DEVNULL, check=False, timeout=30)
        except FileNotFoundError:
            raise ComposeError(f"'{self.docker_bin}' not found: install the Docker CLI with the Compose v2 plugin")
        found = parse_version(proc.stdout)
        if proc.returncode != 0 or not found:
            raise ComposeError("Compose v2 is not installed (`docker compose version` failed): install the "
                               "docker-compose v2 CLI plugin; the standalone v1 `docker-compose` is not supported")
        if found < MIN_COMPOSE_VERSION:
            raise ComposeError("Compose %s is too old: %s or newer is required" % (
                ".".join(map(str, found)), ".".join(map(str, MIN_COMPOSE_VERSION))))
        return found

    def config(self, with_override=True):
        """The resolved project as Compose sees it (services, name, networks...)."""
        proc = self.run(["config", "--format", "json"], with_override=with_override)
        try:
            return json.loads(proc.stdout)
        except ValueError:
            raise ComposeError("`docker compose config --format json` did not print JSON")

    def ps(self):
        """Every container of the project, running or not, as Compose lists them."""
        proc = self.run(["ps", "--all", "--format", "json"])
        return parse_ps_output(proc.stdout)

    def build(self, services, timeout=None):
        return self.run(["build"] + list(services), timeout=timeout)

    def up(self, services, pull="missing", recreate="auto", wait=True, wait_timeout=120, timeout=None,
           remove_orphans=False):
        args = ["up", "--detach", "--no-build", "--pull", pull, "--quiet-pull"]
        if recreate == "always":
            args.append("--force-recreate")
        elif recreate == "never":
            args.append("--no-recreate")
        if wait:
            args += ["--wait", "--wait-timeout", str(int(wait_timeout))]
        if remove_orphans:
            args.append("--remove-orphans")
        return self.run(args + list(services), timeout=timeout)

    def down(self, timeout=None):
        return self.run(["down", "--remove-orphans"], timeout=timeout)

    def logs(self, service, tail=50):
        proc = self.run(["logs", "--no-color", "--tail", str(tail), service], check=False)
        return proc.stdout + proc.stderr
