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
# Compose's progress lines (" Container homeiq-web-1  Error"): they name a resource and its state,
# never why it failed, so the line that says why is looked for among the others.
_PROGRESS = re.compile(r"^(Container|Network|Volume|Image) \S+\s+\S+$")


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
    lines = [ln for ln in lines if not _PROGRESS.match(ln)] or lines
    for ln in reversed(lines):
        if _ERROR_HINTS.search(ln):
            return ln
    return lines[-1]


# Compose's own discovery order when no file is named (compose-go's DefaultFileNames and
# DefaultOverrideFileNames): the first main file found, then the first override file found.
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
DEFAULT_OVERRIDE_FILES = ("compose.override.yml", "compose.override.yaml", "docker-compose.override.yml",
                          "docker-compose.override.yaml")


def discover_files(folder):
    """The files Compose picks in `folder` when none is named: [main] or [main, override], [] for none."""
    def first(names):
        return [path for path in (os.path.join(folder, n) for n in names) if os.path.isfile(path)][:1]
    main = first(DEFAULT_FILES)
    return main + first(DEFAULT_OVERRIDE_FILES) if main else []


def _under(base, path):
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


class ComposeCLI:
    """Runs `docker compose` for one project with its files, env files and profiles.

    Compose runs from `project_src` (its working directory), as `docker compose -f` does from a checkout:
    relative files and env files are relative to it, and the project directory (where relative paths in the
    files and the `.env` resolve from) is the first file's folder unless `project_directory` names one.
    """

    def __init__(self, project_src, project_name=None, files=None, env_files=None, profiles=None,
                 override_file=None, docker_bin="docker", environ=None, project_directory=None):
        self.project_src = project_src
        self.project_name = project_name
        self.files = list(files or [])
        self.env_files = list(env_files or [])
        self.profiles = list(profiles or [])
        self.override_file = override_file
        self.docker_bin = docker_bin
        self.environ = dict(os.environ if environ is None else environ)
        self.project_directory = project_directory or None

    def base_args(self, with_override=True):
        args = [self.docker_bin, "compose"]
        if self.project_directory:
            args += ["--project-directory", _under(self.project_src, self.project_directory)]
        if self.project_name:
            args += ["--project-name", self.project_name]
        for f in self.files:
            args += ["--file", _under(self.project_src, f)]
        if with_override and self.override_file:
            if not self.files:
                for f in self.default_files():
                    args += ["--file", f]
            args += ["--file", self.override_file]
        for e in self.env_files:
            args += ["--env-file", _under(self.project_src, e)]
        for p in self.profiles:
            args += ["--profile", p]
        return args

    def project_dir(self):
        """The project directory as Compose resolves it: where `.env` and relative paths in the files are read from."""
        if self.project_directory:
            return _under(self.project_src, self.project_directory)
        if self.files:
            return os.path.dirname(_under(self.project_src, self.files[0]))
        return os.path.normpath(self.project_src)

    def default_files(self):
        """The files Compose would pick on its own in the project directory (the main file and its
        override, when present); needed once an override file of ours is added, since naming any file
        turns discovery off."""
        folder = self.project_dir()
        found = discover_files(folder)
        if not found:
            raise ComposeError(f"no compose file in {folder}: add compose.yaml or name files with `files`")
        return found

    def run(self, args, with_override=True, timeout=None, check=True):
        cmd = self.base_args(with_override) + list(args)
        if not os.path.isdir(self.project_src):
            raise ComposeError(f"project_src {self.project_src} does not exist or is not a directory: point it at the folder Compose runs from")
        try:
            # plain Python, shared by several modules and tested without AnsibleModule: no run_command here
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.environ,  # pylint: disable=ansible-bad-function
                                  cwd=self.project_src, stdin=subprocess.DEVNULL, check=False)
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
