# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight checks of a HomeIQ deployment: every check runs, one summary reports them all.

Private to the homeiq.deploy collection: not a public API, it may change without notice.

``run_preflight(params)`` takes the options of the ``preflight_check`` module (a plain dict) and
returns ``{checks, skipped_checks, counts, failed_checks, warned_checks, summary, msg, project_name,
changed}``. Each entry of ``checks`` is ``{check, result: pass|warn|fail, why, details}`` (and
``project`` for the per-project checks of a stack, given as ``projects``). A failing check named in
``warn`` is reported as ``warn``. Every string returned passes through a redactor that knows the
tokens and the secret-looking variables of the projects, so no secret leaves this code.

The checks live in ``_preflight_host_checks`` (run once per host) and ``_preflight_project_checks``
(run once per compose project).
"""
from __future__ import annotations

import os
import re
import shutil

from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_host as host
from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_project as proj
from ansible_collections.homeiq.deploy.plugins.module_utils import _secrets_scan as scan
from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_host_checks as hc
from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_project_checks as pc
from ansible_collections.homeiq.deploy.plugins.module_utils._compose import MIN_COMPOSE_VERSION
# Re-exported: callers and tests reach the shared types through this module.
from ansible_collections.homeiq.deploy.plugins.module_utils._preflight_base import (  # noqa: F401  pylint: disable=unused-import
    Outcome, PreflightError, Skip, is_secret_name, plural as _plural)

# In the order the summary lists them.
CHECK_NAMES = (
    "engine", "engine_access", "compose_version", "disk", "network", "env_files", "env_vars",
    "ports", "compose_config", "mounts", "healthchecks", "resource_limits", "depends_on", "tokens",
    "home_assistant", "influxdb", "secret_scan", "gates",
)
# The checks judged once per compose project; the others run once per host.
PROJECT_CHECKS = ("env_files", "env_vars", "ports", "compose_config", "mounts", "healthchecks", "resource_limits",
                  "depends_on", "tokens")
PROJECT_KEYS = ("project_name", "files", "env_files", "profiles", "services", "project_directory")
_PROJECT_NAME_OK = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

DEFAULTS = {
    "project_name": None, "files": [], "env_files": [], "profiles": [], "services": [], "project_directory": None,
    "projects": [], "environment": {},
    "docker_host": None, "docker_cli": None, "only": [], "skip": [], "warn": [], "compose_min_version": "2.21.0",
    "min_free_gb": 10.0, "disk_paths": [], "network_hosts": [], "network_timeout": 5.0,
    "required_env_vars": [], "secret_vars": [], "env_example_files": [], "placeholder_values": [],
    "healthcheck_exempt": [], "limits_exempt": [], "home_assistant_url": None,
    "home_assistant_token": None, "home_assistant_token_env": None, "influxdb_url": None,
    "influxdb_token": None, "influxdb_token_env": None, "influxdb_org": None, "influxdb_bucket": None,
    "http_timeout": 10.0, "validate_certs": True, "secret_scan_paths": [], "secret_scan_exclude": [],
    "secret_scan_allow": [], "secret_scan_baseline": ".homeiq-secrets-baseline.json", "secret_scan_write_baseline": False,
    "gates": [], "gate_timeout": 900, "check_mode": False,
}


def _project_specs(p):
    """[{name, files, env_files, profiles, services, project_directory}]: the stack, or the one project."""
    if not p["projects"]:
        return [{"name": p["project_name"], "files": list(p["files"]), "env_files": list(p["env_files"]),
                 "profiles": list(p["profiles"]), "services": list(p["services"]),
                 "project_directory": p["project_directory"]}]
    given = [k for k in PROJECT_KEYS if p.get(k)]
    if given:
        raise PreflightError(f"projects cannot be combined with {', '.join(given)}: give those per project, in each "
                             "entry of projects")
    specs = []
    for i, entry in enumerate(p["projects"]):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise PreflightError(f"projects[{i}] needs a name (the compose project name), e.g. "
                                 "{name: homeiq-core-platform, files: [domains/core-platform/compose.yml]}")
        name = str(entry["name"])
        if not _PROJECT_NAME_OK.match(name):
            raise PreflightError(f"projects[{i}] name {name!r} is not a compose project name (lower-case letters, "
                                 "digits, - and _)")
        if name in (s["name"] for s in specs):
            raise PreflightError(f"two entries of projects are named {name!r}: each compose project once")
        unknown = sorted(set(entry) - {"name", "files", "env_files", "profiles", "services", "project_directory"})
        if unknown:
            raise PreflightError(f"projects[{i}] ({name}) has unknown key(s) {', '.join(unknown)}; known: files, "
                                 "env_files, profiles, services, project_directory")
        spec = {"name": name, "project_directory": entry.get("project_directory") or None}
        for key in ("files", "env_files", "profiles", "services"):
            value = entry.get(key) or []
            if isinstance(value, str) or not isinstance(value, list):
                raise PreflightError(f"projects[{i}] ({name}) {key} must be a list")
            spec[key] = [str(v) for v in value]
        specs.append(spec)
    return specs


class Config:
    def __init__(self, params):
        p = dict(DEFAULTS)
        p.update({k: v for k, v in (params or {}).items() if v is not None})
        self.p = p
        src = p.get("project_src")
        if not src:
            raise PreflightError("project_src is required: the folder holding the compose project")
        self.project_src = os.path.abspath(os.path.expanduser(str(src)))
        for key in ("only", "skip", "warn"):
            for name in p[key]:
                if name not in CHECK_NAMES and not str(name).startswith("gate:"):
                    raise PreflightError(f"unknown check {name!r} in {key}; known checks: {', '.join(CHECK_NAMES)}, gate:<name>")
        self.gates = []
        seen = set()
        for i, gate in enumerate(p["gates"]):
            if not isinstance(gate, dict) or not gate.get("command"):
                raise PreflightError(f"gates[{i}] needs a command (and a name): {{name: unit_tests, command: 'pytest -q'}}")
            name = str(gate.get("name") or f"gate{i + 1}")
            if name in seen:
                raise PreflightError(f"two gates are named {name!r}: give each gate its own name")
            seen.add(name)
            self.gates.append({"name": name, "command": str(gate["command"]), "chdir": gate.get("chdir"),
                               "timeout": gate.get("timeout") or p["gate_timeout"],
                               "environment": {str(k): str(v) for k, v in (gate.get("environment") or {}).items()}})
        minimum = host.parse_version(p["compose_min_version"])
        if minimum is None:
            raise PreflightError(f"compose_min_version {p['compose_min_version']!r} is not a version such as 2.21.0")
        if tuple(minimum) < tuple(MIN_COMPOSE_VERSION):
            lowest = ".".join(map(str, MIN_COMPOSE_VERSION))
            raise PreflightError(f"compose_min_version {p['compose_min_version']} is below {lowest}, the lowest Compose "
                                 f"this collection works with (its Compose client needs {lowest}): set {lowest} or higher")
        self.specs = _project_specs(p)
        self.stack = bool(p["projects"])
        for entry in p["network_hosts"]:
            if "$" in str(entry):
                continue  # judged after ${VAR} interpolation, by the network check
            try:
                host.parse_endpoint(entry)
            except ValueError as exc:
                raise PreflightError(f"network_hosts: {exc}; write host:port or a URL")
        for key in ("home_assistant_url", "influxdb_url"):
            url = p.get(key)
            if url and not re.match(r"^https?://[^/]", str(url)):
                raise PreflightError(f"{key} {url!r} is not an http:// or https:// URL")
        for i, entry in enumerate(p["secret_scan_allow"]):
            if not isinstance(entry, dict) or not any(entry.get(k) for k in ("path", "rule", "fingerprint")):
                raise PreflightError(f"secret_scan_allow[{i}] needs at least one of path, rule, fingerprint")

    def __getattr__(self, name):
        try:
            return self.__dict__["p"][name]
        except KeyError:
            raise AttributeError(name)

    def severity(self, check):
        warn = set(self.warn)
        if check in warn or (check.startswith("gate:") and "gates" in warn):
            return "warn"
        return "fail"

    def skip_reason(self, check):
        """Why a check does not run by configuration, or None."""
        skip = set(self.skip)
        if check in skip or (check.startswith("gate:") and "gates" in skip):
            return "skipped by configuration (skip)"
        only = set(self.only)
        if only and check not in only and not (check.startswith("gate:") and "gates" in only):
            return "not selected (only)"
        return None

    def skipped(self, check):
        return self.skip_reason(check) is not None


class Context:
    """What the checks share: the projects, the engine client, the redactor. `project` is the
    project the per-project checks judge at the moment (the first one for the host checks)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.docker_cli = cfg.docker_cli or shutil.which("docker") or "docker"
        self.projects = [proj.ComposeProject(
            cfg.project_src, files=spec["files"], env_files=spec["env_files"], profiles=spec["profiles"],
            project_name=spec["name"], environment=cfg.environment, docker_cli=self.docker_cli,
            docker_host=cfg.docker_host, project_directory=spec["project_directory"], services=spec["services"])
            for spec in cfg.specs]
        self.project = self.projects[0]
        self.engine = host.Engine(cfg.docker_host)
        self.redact = scan.Redactor()
        for key in ("home_assistant_token", "influxdb_token"):
            self.redact.add(getattr(cfg, key))
        for value in cfg.environment.values():
            self.redact.add(value)
        self._tokens_loaded = False
        self.changed = False

    def all_env(self):
        """Every project's variables (a stack: the first project that defines a name wins)."""
        out = {}
        for project in reversed(self.projects):
            out.update(project.deploy_env())
        return out

    def expand(self, text):
        """${VAR} in a URL or host:port, from the projects' variables (env files, environment)."""
        if not text or "$" not in str(text):
            return text
        return proj.interpolate(str(text), self.all_env())

    def env_value(self, name):
        return self.all_env().get(name)

    def token(self, which):
        value = getattr(self.cfg, f"{which}_token")
        if value:
            return value
        var = getattr(self.cfg, f"{which}_token_env")
        if var:
            return self.env_value(var)
        return None

    def load_secrets(self):
        """Feeds the redactor every secret-looking value the projects' environment holds, and
        the committed defaults of secret variables in their compose files."""
        if self._tokens_loaded:
            return
        self._tokens_loaded = True
        names = set(self.cfg.secret_vars)
        for key in ("home_assistant_token_env", "influxdb_token_env"):
            if getattr(self.cfg, key):
                names.add(getattr(self.cfg, key))
        for project in self.projects:
            for name, value in project.deploy_env().items():
                if name in names or is_secret_name(name):
                    self.redact.add(value)
            for _path, default in project.committed_defaults(all_defaults=True):
                if default.name in names or is_secret_name(default.name):
                    self.redact.add(default.literal)


CHECKS = hc.CHECKS_BEFORE + pc.CHECKS + hc.CHECKS_AFTER


def _run_check(ctx, fn):
    """(Outcome or None, skip reason or None): a check never hides the others."""
    try:
        return fn(ctx), None
    except Skip as exc:
        return None, ctx.redact(str(exc))
    except Exception as exc:  # pylint: disable=broad-exception-caught
        return Outcome(False, f"the check could not run: {exc.__class__.__name__}: {host.short_error(exc)}"), None


def run_preflight(params):
    """Runs every check that is not skipped and returns the summary (see the module docstring)."""
    cfg = Config(params)
    if not os.path.isdir(cfg.project_src):
        raise PreflightError(f"project_src {cfg.project_src} does not exist or is not a folder")
    ctx = Context(cfg)
    ctx.load_secrets()
    checks = []
    skipped = []
    ordered = []  # (label, result-or-'skip', why) in order, for the summary
    try:
        plan = list(CHECKS) + hc.gate_checks(ctx)
        for name, fn in plan:
            if cfg.skipped(name):
                skipped.append({"check": name, "why": cfg.skip_reason(name)})
                if not cfg.only:  # with `only`, the summary lists just the selected checks
                    ordered.append((name, "skip", skipped[-1]["why"]))
                continue
            targets = ctx.projects if (cfg.stack and name in PROJECT_CHECKS) else [None]
            for project in targets:
                ctx.project = project or ctx.projects[0]
                label = f"{name} [{project.project_name_option}]" if project else name
                outcome, skip_why = _run_check(ctx, fn)
                extra = {"project": project.project_name_option} if project else {}
                if outcome is None:
                    skipped.append(dict({"check": name, "why": skip_why}, **extra))
                    ordered.append((label, "skip", skip_why))
                    continue
                result = "pass" if outcome.ok else cfg.severity(name)
                entry = dict({"check": name, "result": result, "why": ctx.redact(outcome.why),
                              "details": [ctx.redact(d) for d in outcome.details]}, **extra)
                entry["label"] = label
                checks.append(entry)
                ordered.append((label, result, entry["why"]))
        ctx.project = ctx.projects[0]
        if not cfg.gates:
            why = cfg.skip_reason("gates") or "no gate commands configured (gates)"
            skipped.append({"check": "gates", "why": why})
            if not cfg.only or "gates" in cfg.only:
                ordered.append(("gates", "skip", why))
    finally:
        ctx.engine.close()
    counts = {"pass": 0, "warn": 0, "fail": 0, "skip": len(skipped)}
    for c in checks:
        counts[c["result"]] += 1
    failed = [c["label"] for c in checks if c["result"] == "fail"]
    warned = [c["label"] for c in checks if c["result"] == "warn"]
    for c in checks:
        c.pop("label", None)
    summary = [f"{res.upper():<4}  {label}: {why}" for label, res, why in ordered]
    if failed:
        msg = (f"preflight: {len(failed)} of {len(checks)} checks failed ({', '.join(failed)}); "
               "nothing was built or deployed: fix them and run again")
    elif warned:
        msg = f"preflight: {counts['pass']} checks passed, {len(warned)} warned ({', '.join(warned)})"
    elif not checks:
        msg = "preflight: no check ran (every one skipped or not configured)"
    else:
        msg = f"preflight: {_plural(len(checks), 'check')} passed"
    result = {
        "checks": checks,
        "skipped_checks": skipped,
        "counts": counts,
        "failed_checks": failed,
        "warned_checks": warned,
        "summary": summary,
        "msg": ctx.redact(msg),
        "project_name": ctx.redact(", ".join(p.project_name(ask_compose=False) for p in ctx.projects)),
        "changed": ctx.changed,
    }
    if cfg.stack:
        result["projects"] = [p.project_name_option for p in ctx.projects]
    return result
