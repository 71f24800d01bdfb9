# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight checks of a HomeIQ deployment: every check runs, one summary reports them all.

Private to the homeiq.deploy collection: not a public API, it may change without notice.

``run_preflight(params)`` takes the options of the ``preflight_check`` module (a plain dict) and
returns ``{checks, skipped_checks, counts, failed_checks, warned_checks, summary, msg, project_name}``.
Each entry of ``checks`` is ``{check, result: pass|warn|fail, why, details}``. A failing check
named in ``warn`` is reported as ``warn``. Every string returned passes through a redactor that
knows the tokens and the secret-looking variables of the project, so no secret leaves this code.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_host as host
from ansible_collections.homeiq.deploy.plugins.module_utils._compose import ComposeError
from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_http as http
from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_project as proj
from ansible_collections.homeiq.deploy.plugins.module_utils import _secrets_scan as scan

# In the order the summary lists them.
CHECK_NAMES = (
    "engine", "engine_access", "compose_version", "disk", "network", "env_files", "env_vars",
    "ports", "compose_config", "healthchecks", "resource_limits", "depends_on", "tokens",
    "home_assistant", "influxdb", "secret_scan", "gates",
)

SECRET_NAME = re.compile(
    r"(?i)(?:^|_)(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|PASS|PWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY|"
    r"SECRET_KEY|CREDENTIALS?|AUTH_KEY|CLIENT_SECRET)(?:_|$)"
)
_SECRET_NAME_NOT = re.compile(r"(?i)_(FILE|PATH|DIR|URL|URI|HOST|PORT|NAME|TYPE|LENGTH|LEN|TTL|TIMEOUT|HEADER|ID|USER|USERNAME)$")

DEFAULTS = {
    "project_name": None, "files": [], "env_files": [], "profiles": [], "environment": {},
    "docker_host": None, "docker_cli": None, "only": [], "skip": [], "warn": [], "compose_min_version": "2.21.0",
    "min_free_gb": 10.0, "disk_paths": [], "network_hosts": [], "network_timeout": 5.0,
    "required_env_vars": [], "secret_vars": [], "env_example_files": [], "placeholder_values": [],
    "healthcheck_exempt": [], "limits_exempt": [], "home_assistant_url": None,
    "home_assistant_token": None, "home_assistant_token_env": None, "influxdb_url": None,
    "influxdb_token": None, "influxdb_token_env": None, "influxdb_org": None, "influxdb_bucket": None,
    "http_timeout": 10.0, "validate_certs": True, "secret_scan_paths": [], "secret_scan_exclude": [],
    "secret_scan_allow": [], "gates": [], "gate_timeout": 900,
}


class PreflightError(Exception):
    """Bad input: the message says what is wrong and what to do."""


class Skip(Exception):
    """A check with nothing to judge; the message says why."""


class Outcome:
    def __init__(self, ok, why, details=None):
        self.ok = bool(ok)
        self.why = why
        self.details = list(details or [])


def is_secret_name(name):
    if name.upper() in ("PWD", "OLDPWD"):  # the shell's working directories
        return False
    return bool(SECRET_NAME.search(name)) and not _SECRET_NAME_NOT.search(name)


def _plural(n, word):
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


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
        if host.parse_version(p["compose_min_version"]) is None:
            raise PreflightError(f"compose_min_version {p['compose_min_version']!r} is not a version such as 2.21.0")
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
    """What the checks share: the project, the engine client, the redactor."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.docker_cli = cfg.docker_cli or shutil.which("docker") or "docker"
        self.project = proj.ComposeProject(
            cfg.project_src, files=cfg.files, env_files=cfg.env_files, profiles=cfg.profiles,
            project_name=cfg.project_name, environment=cfg.environment, docker_cli=self.docker_cli,
            docker_host=cfg.docker_host)
        self.engine = host.Engine(cfg.docker_host)
        self.redact = scan.Redactor()
        for key in ("home_assistant_token", "influxdb_token"):
            self.redact.add(getattr(cfg, key))
        for value in cfg.environment.values():
            self.redact.add(value)
        self._tokens_loaded = False

    def expand(self, text):
        """${VAR} in a URL or host:port, from the project's variables (env files, environment)."""
        if not text or "$" not in str(text):
            return text
        return proj.interpolate(str(text), self.project.deploy_env())

    def env_value(self, name):
        return self.project.deploy_env().get(name)

    def token(self, which):
        value = getattr(self.cfg, f"{which}_token")
        if value:
            return value
        var = getattr(self.cfg, f"{which}_token_env")
        if var:
            return self.env_value(var)
        return None

    def load_secrets(self):
        """Feeds the redactor every secret-looking value the project's environment holds."""
        if self._tokens_loaded:
            return
        self._tokens_loaded = True
        env = self.project.deploy_env()
        names = set(self.cfg.secret_vars)
        for key in ("home_assistant_token_env", "influxdb_token_env"):
            if getattr(self.cfg, key):
                names.add(getattr(self.cfg, key))
        for name, value in env.items():
            if name in names or is_secret_name(name):
                self.redact.add(value)


# --- environment checks ---------------------------------------------------------------------

def check_engine(ctx):
    client = ctx.engine.connect()
    if client is None:
        return Outcome(False, ctx.engine.error)
    v = ctx.engine.version or {}
    return Outcome(True, f"Docker Engine {v.get('Version', '?')} (API {v.get('ApiVersion', '?')}, "
                         f"{v.get('Os', '?')}/{v.get('Arch', '?')}) answers at {ctx.engine.host}")


def check_engine_access(ctx):
    ok, why = host.check_engine_access(ctx.cfg.docker_host)
    return Outcome(ok, why)


def check_compose_version(ctx):
    minimum = host.parse_version(ctx.cfg.compose_min_version)
    want = ".".join(map(str, minimum))
    try:
        version = ctx.project.compose_cli().version()
    except ComposeError as exc:
        return Outcome(False, str(exc))
    text = ".".join(map(str, version))
    if version < minimum:
        return Outcome(False, f"Compose {text} is older than the minimum {want}: upgrade the Compose v2 plugin")
    return Outcome(True, f"Compose {text} (>= {want})")


def check_disk(ctx):
    minimum = float(ctx.cfg.min_free_gb) * host.GB
    paths = []
    ctx.engine.connect()
    root = ctx.engine.root_dir
    notes = []
    if not ctx.engine.is_local():
        notes.append(f"Docker data: not checked (the engine at {ctx.engine.host} is not on this host)")
    elif root:
        paths.append(("Docker data", root, ""))
    elif os.path.isdir("/var/lib/docker"):
        paths.append(("Docker data", "/var/lib/docker", " (assumed: the engine did not say)"))
    paths.append(("project", ctx.cfg.project_src, ""))
    for p in ctx.cfg.disk_paths:
        paths.append(("path", os.path.abspath(os.path.expanduser(str(p))), ""))
    by_dev = {}
    details = list(notes)
    short = []
    failed = []
    for label, path, note in paths:
        try:
            free, dev, probe = host.free_bytes(path)
        except OSError as exc:
            failed.append(f"{label} {path}: cannot stat ({host.short_error(exc)})")
            details.append(failed[-1])
            continue
        shared = by_dev.get(dev)
        by_dev.setdefault(dev, f"{label} {path}")
        line = f"{label} {path}{note}: {host.fmt_gb(free)} free"
        if shared:
            line += f" (same filesystem as {shared})"
        details.append(line)
        if free < minimum:
            failed.append(f"{label} {path} has {host.fmt_gb(free)} free, needs {host.fmt_gb(minimum)}")
        else:
            short.append(f"{label} {host.fmt_gb(free)}")
    if failed:
        return Outcome(False, "; ".join(failed) + ": free space (docker image prune, docker builder prune) or grow the disk", details)
    return Outcome(True, f"at least {host.fmt_gb(minimum)} free: " + ", ".join(short), details)


def _network_targets(ctx):
    targets = []
    cfg = ctx.cfg
    if cfg.home_assistant_url:
        targets.append(("Home Assistant", ctx.expand(cfg.home_assistant_url)))
    if cfg.influxdb_url:
        targets.append(("InfluxDB", ctx.expand(cfg.influxdb_url)))
    for entry in cfg.network_hosts:
        targets.append((None, ctx.expand(entry)))
    return targets


def check_network(ctx):
    import threading  # pylint: disable=import-outside-toplevel

    targets = _network_targets(ctx)
    if not targets:
        raise Skip("no hosts to reach (network_hosts, home_assistant_url and influxdb_url are empty)")
    results = [None] * len(targets)
    timeout = float(ctx.cfg.network_timeout)

    def probe(i, endpoint):
        try:
            h, port = host.parse_endpoint(endpoint)
        except ValueError as exc:
            results[i] = (False, f"{exc}: write host:port or a URL")
            return
        results[i] = host.probe_endpoint(h, port, timeout)

    threads = [threading.Thread(target=probe, args=(i, t[1]), daemon=True) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout * 2 + 1)
    details = []
    bad = []
    for (label, _endpoint), res in zip(targets, results):
        ok, why = res if res else (False, f"{_endpoint}: no answer within {timeout * 2:g}s")
        text = f"{label}: {why}" if label else why
        details.append(text)
        if not ok:
            bad.append(text)
    if bad:
        return Outcome(False, f"{len(bad)} of {len(targets)} hosts not reachable within {timeout:g}s: " + "; ".join(bad), details)
    if len(targets) == 1:
        return Outcome(True, f"the one host needed resolves and accepts connections: {details[0]}", details)
    return Outcome(True, f"all {len(targets)} hosts resolve and accept connections", details)


def check_env_files(ctx):
    project = ctx.project
    listed = project.env_file_paths()
    refs = []
    raw = project.raw()
    if not raw.error:
        refs = raw.env_file_refs()
    if not listed and not refs:
        raise Skip("no env files given (env_files) or referenced by services (env_file)")
    problems = []
    details = []
    for path in listed:
        rel = project.show(path)
        if not os.path.exists(path):
            problems.append(f"{rel} is missing")
        else:
            try:
                proj.read_env_file(path)
                details.append(f"{rel}: present")
            except proj.EnvFileError as exc:
                problems.append(str(exc).replace(path, rel))
    by_path = {}
    for service, path, required in refs:
        entry = by_path.setdefault(path, {"services": [], "required": False})
        entry["services"].append(service)
        entry["required"] = entry["required"] or required
    for path, entry in by_path.items():
        rel = project.show(path)
        users = ", ".join(entry["services"])
        if os.path.exists(path):
            try:
                proj.read_env_file(path)
                details.append(f"{rel} (env_file of {users}): present")
            except proj.EnvFileError as exc:
                problems.append(str(exc).replace(path, rel) + f" (env_file of {users})")
        elif entry["required"]:
            problems.append(f"{rel} (env_file of {users}) is missing")
        else:
            details.append(f"{rel} (optional env_file of {users}): absent")
    details.extend(problems)
    if problems:
        return Outcome(False, "; ".join(problems) + ": create them (see the project's *.example files)", details)
    names = [project.show(p) for p in list(listed) + list(by_path)]
    return Outcome(True, f"{_plural(len(names), 'env file')} present and readable: {', '.join(names)}", details)


def check_env_vars(ctx):
    required = list(dict.fromkeys(ctx.cfg.required_env_vars))
    raw = ctx.project.raw()
    from_compose = [] if raw.error else [n for n in dict.fromkeys(raw.missing_required) if n not in required]
    if not required and not from_compose:
        raise Skip("no required variables listed (required_env_vars) and none marked ${VAR:?} in the compose files")
    env = ctx.project.deploy_env()
    missing = [n for n in required if n not in env]
    empty = [n for n in required if n in env and not str(env[n]).strip()]
    problems = []
    if missing:
        problems.append("not set: " + ", ".join(missing))
    if empty:
        problems.append("empty: " + ", ".join(empty))
    if from_compose:
        problems.append("required by the compose files (${VAR:?}) but not set: " + ", ".join(from_compose))
    if problems:
        return Outcome(False, "; ".join(problems) + ": set them in an env file or the environment")
    if not required:
        return Outcome(True, "every variable the compose files mark ${VAR:?} is set")
    return Outcome(True, f"{_plural(len(required), 'required variable')}, each set: " + ", ".join(required))


def check_ports(ctx):
    services, source, name = ctx.project.model()
    if services is None:
        raise Skip(f"the project cannot be read, so its ports are unknown ({source.splitlines()[0]})")
    wanted = proj.published_ports(services)
    if not wanted:
        raise Skip("the project publishes no fixed host port")
    containers = None
    if ctx.engine.connect() is not None:
        try:
            containers = ctx.engine.containers()
        except Exception as exc:  # an engine that stopped answering
            containers = None
            ctx.engine.error = host.short_error(exc)
    listeners = host.read_listeners() if ctx.engine.is_local() else []
    taken = []
    own = 0
    details = []
    pending = []
    for service, ip, port, proto in wanted:
        where = f"{ip or '0.0.0.0'}:{port}/{proto} ({service})"
        holders = host.container_port_holders(containers, port, proto, ip)
        if holders:
            foreign = [(n, p) for n, p in holders if p != name]
            if foreign:
                who = ", ".join(f"container {n} ({'project ' + p if p else 'not a compose container'})" for n, p in foreign)
                taken.append(f"{where} is held by {who}")
            else:
                own += 1
                details.append(f"{where}: held by this project's container {holders[0][0]}")
            continue
        socks = [s for s in listeners if s[0] == proto and s[2] == port and host.addresses_overlap(s[1], ip)]
        if socks:
            pending.append((where, socks))
        else:
            details.append(f"{where}: free")
    if pending:
        owners = host.socket_owners({s[3] for _where, socks in pending for s in socks})
        for where, socks in pending:
            procs = []
            for s in socks:
                for pid, comm in owners.get(s[3], []):
                    if (pid, comm) not in procs:
                        procs.append((pid, comm))
            if procs:
                who = ", ".join(f"process {comm} (pid {pid})" for pid, comm in procs)
                if any(comm == "docker-proxy" for _pid, comm in procs) and containers is None:
                    who += ": a container publishes it"
            else:
                who = f"a process this user cannot see (socket inode {socks[0][3]})"
            taken.append(f"{where} is held by {who}")
    details.extend(taken)
    note = "" if containers is not None else " (containers not listed: the engine does not answer)"
    if taken:
        return Outcome(False, f"{len(taken)} of {len(wanted)} published ports are taken: " + "; ".join(taken)
                       + ": stop what holds them or change the project's port variables" + note, details)
    if own:
        return Outcome(True, f"{_plural(len(wanted), 'published host port')}, each free or held by this project's own "
                             f"containers ({own} held by them){note}", details)
    return Outcome(True, f"{_plural(len(wanted), 'published host port')}, each free{note}", details)


# --- configuration checks -------------------------------------------------------------------

def check_compose_config(ctx):
    data, err = ctx.project.config()
    if data is None:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        return Outcome(False, "Compose rejects the project: " + (lines[0] if lines else err), lines)
    services = data.get("services") or {}
    profiles = ", ".join(ctx.project.active_profiles()) or "none"
    env_files = ", ".join(ctx.project.show(p) for p in ctx.project.env_file_paths()) or "none"
    return Outcome(True, f"Compose accepts the project {data.get('name')!r}: {_plural(len(services), 'service')} "
                         f"(profiles: {profiles}; env files: {env_files})")


def _model_or_skip(ctx):
    services, source, _name = ctx.project.model()
    if services is None:
        raise Skip(f"the project cannot be read ({source.splitlines()[0]})")
    note = "" if source == "compose" else " (read from the compose files: Compose rejects the project)"
    return services, note


def check_healthchecks(ctx):
    services, note = _model_or_skip(ctx)
    exempt = set(ctx.cfg.healthcheck_exempt)
    missing = []
    disabled = []
    details = []
    for name in sorted(services):
        svc = services[name]
        if name in exempt:
            details.append(f"{name}: exempt")
            continue
        state = proj.healthcheck_state(svc)
        if state == "declared":
            details.append(f"{name}: healthcheck in compose")
            continue
        if state == "disabled":
            disabled.append(name)
            continue
        if proj.dockerfile_healthcheck(svc, ctx.project.project_src):
            details.append(f"{name}: HEALTHCHECK in its Dockerfile")
            continue
        if _image_healthcheck(ctx, svc.get("image")):
            details.append(f"{name}: HEALTHCHECK in image {svc.get('image')}")
            continue
        missing.append(name)
    problems = []
    if missing:
        problems.append("no healthcheck: " + ", ".join(missing))
    if disabled:
        problems.append("healthcheck disabled: " + ", ".join(disabled))
    details.extend(problems)
    if problems:
        return Outcome(False, "; ".join(problems) + note + ": add a healthcheck or list the service in healthcheck_exempt", details)
    ex = f" ({len(exempt & set(services))} exempt)" if exempt & set(services) else ""
    return Outcome(True, f"{_plural(len(services), 'service')}, each with a healthcheck{ex}{note}", details)


def _image_healthcheck(ctx, image):
    if not image or ctx.engine.connect() is None:
        return False
    try:
        attrs = ctx.engine.connect().api.inspect_image(image)
    except Exception:  # not built or pulled yet
        return False
    test = ((attrs.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    return bool(test) and str(test[0]).upper() != "NONE"


def check_resource_limits(ctx):
    services, note = _model_or_skip(ctx)
    exempt = set(ctx.cfg.limits_exempt)
    no_mem = []
    no_cpu = []
    details = []
    for name in sorted(services):
        if name in exempt:
            details.append(f"{name}: exempt")
            continue
        mem = proj.memory_limit(services[name])
        cpu = proj.cpu_limit(services[name])
        if mem is None:
            no_mem.append(name)
        if cpu is None:
            no_cpu.append(name)
        if mem is not None and cpu is not None:
            details.append(f"{name}: memory {mem}, cpus {cpu}")
    problems = []
    if no_mem:
        problems.append("no memory limit: " + ", ".join(no_mem))
    if no_cpu:
        problems.append("no CPU limit: " + ", ".join(no_cpu))
    details.extend(problems)
    if problems:
        return Outcome(False, "; ".join(problems) + note
                       + ": set deploy.resources.limits (memory, cpus) or list the service in limits_exempt", details)
    ex = f" ({len(exempt & set(services))} exempt)" if exempt & set(services) else ""
    return Outcome(True, f"{_plural(len(services), 'service')}, each with memory and CPU limits{ex}{note}", details)


def check_depends_on(ctx):
    services, source, _name = ctx.project.model()
    raw = ctx.project.raw()
    if services is None:
        raise Skip(f"the project cannot be read ({source.splitlines()[0]})")
    all_services = services if source == "compose" else raw.services
    note = "" if source == "compose" else " (read from the compose files: Compose rejects the project)"
    problems = []
    graph = {}
    edges = 0
    for name in sorted(services):
        deps = []
        for dep, required, kind in proj.dependencies(services[name]):
            label = "depends on" if kind == "depends_on" else f"uses ({kind})"
            if dep not in all_services:
                if required:
                    problems.append(f"{name} {label} undefined service {dep!r}")
                continue
            if dep not in services:
                profiles = ", ".join((all_services.get(dep) or {}).get("profiles") or [])
                if required:
                    problems.append(f"{name} {label} {dep!r}, which is only in profile(s) {profiles} (not active)")
                continue
            deps.append(dep)
            edges += 1
        graph[name] = deps
    for cycle in proj.find_cycles(graph):
        problems.append("dependency cycle: " + " -> ".join(cycle))
    if problems:
        return Outcome(False, "; ".join(problems) + note, problems)
    return Outcome(True, f"{_plural(edges, 'dependency')} between {_plural(len(services), 'service')}: all defined, no cycle{note}")


def _example_values(ctx):
    files = [ctx.project._path(f) for f in ctx.cfg.env_example_files]
    if not files:
        seen = []
        for env_file in ctx.project.env_file_paths() or [os.path.join(ctx.project.project_src, ".env")]:
            for suffix in (".example", ".sample", ".template", ".dist"):
                seen.append(env_file + suffix)
        for name in (".env.example", "env.example", "example.env", ".env.sample"):
            seen.append(os.path.join(ctx.project.project_src, name))
        files = [f for f in dict.fromkeys(seen) if os.path.exists(f)]
    values = {}
    for f in files:
        try:
            values[ctx.project.show(f)] = proj.read_env_file(f, {})
        except proj.EnvFileError:
            continue
    return values


def check_tokens(ctx):
    ctx.load_secrets()
    env = ctx.project.deploy_env()
    files_env = ctx.project.defined_env()
    extra = ctx.cfg.placeholder_values
    entries = []
    missing = []
    for name in ctx.cfg.secret_vars:
        if name in env:
            entries.append((name, env[name]))
        else:
            missing.append(name)
    for name in sorted(files_env):
        if is_secret_name(name) and name not in ctx.cfg.secret_vars:
            entries.append((name, files_env[name]))
    for which, label in (("home_assistant", "Home Assistant token"), ("influxdb", "InfluxDB token")):
        if getattr(ctx.cfg, f"{which}_url"):
            var = getattr(ctx.cfg, f"{which}_token_env")
            if getattr(ctx.cfg, f"{which}_token"):
                entries.append((label, getattr(ctx.cfg, f"{which}_token")))
            elif var:
                if var not in env:
                    missing.append(f"{var} ({label})")
                elif not any(n == var for n, _value in entries):
                    entries.append((var, env[var]))
            else:
                missing.append(f"{label} ({which}_token or {which}_token_env)")
    if not entries and not missing:
        raise Skip("no token or secret variables found (secret_vars lists more)")
    examples = _example_values(ctx)
    problems = [f"{m} is not set" for m in missing]
    good = []
    for name, value in entries:
        reason = scan.placeholder_reason(value, extra)
        if reason is None:
            for example, ex_values in examples.items():
                ex = ex_values.get(name)
                if ex is not None and str(ex).strip() and str(ex).strip() == str(value).strip():
                    reason = f"the same value as in {example}"
                    break
        if reason:
            problems.append(f"{name} is {reason}")
        else:
            good.append(name)
    if problems:
        return Outcome(False, "; ".join(problems) + ": set real values", problems)
    return Outcome(True, f"{_plural(len(good), 'token')} set, none a placeholder, known default or example value: "
                         + ", ".join(good))


def check_home_assistant(ctx):
    url = ctx.expand(ctx.cfg.home_assistant_url)
    if not url:
        raise Skip("not configured (home_assistant_url is empty)")
    ok, why = http.check_home_assistant(url, ctx.token("home_assistant"), ctx.cfg.http_timeout, ctx.cfg.validate_certs)
    return Outcome(ok, why)


def check_influxdb(ctx):
    url = ctx.expand(ctx.cfg.influxdb_url)
    if not url:
        raise Skip("not configured (influxdb_url is empty)")
    ok, why = http.check_influxdb(url, ctx.token("influxdb"), ctx.cfg.influxdb_org, ctx.cfg.influxdb_bucket,
                                  ctx.cfg.http_timeout, ctx.cfg.validate_certs)
    return Outcome(ok, why)


# --- security checks ------------------------------------------------------------------------

def _git_tracked(root, paths):
    """The subset of paths git tracks in root's work tree (empty when git or the repo is absent)."""
    git = shutil.which("git")
    if not git or not paths:
        return set()
    try:
        # plain Python without AnsibleModule: subprocess, not run_command
        proc = subprocess.run([git, "-C", root, "ls-files", "-z", "--full-name", "--"] + list(paths),  # pylint: disable=ansible-bad-function
                              capture_output=True, timeout=30, check=False)
        top = subprocess.run([git, "-C", root, "rev-parse", "--show-toplevel"],  # pylint: disable=ansible-bad-function
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    if proc.returncode != 0 or top.returncode != 0:
        return set()
    toplevel = top.stdout.strip()
    return {os.path.join(toplevel, p) for p in proc.stdout.decode("utf-8", "replace").split("\0") if p}


def check_secret_scan(ctx):
    root = ctx.project.project_src
    if not os.path.isdir(root):
        return Outcome(False, f"project_src {root} is not a folder")
    in_use = list(ctx.project.env_file_paths())
    raw = ctx.project.raw()
    if not raw.error:
        in_use += [path for _service, path, _required in raw.env_file_refs()]
    env_files = [os.path.abspath(p) for p in dict.fromkeys(in_use) if os.path.exists(p)]
    tracked = {os.path.realpath(p) for p in _git_tracked(root, env_files)}
    skip_files = [p for p in env_files if os.path.realpath(p) not in tracked]
    result = scan.scan_tree(root, ctx.cfg.secret_scan_paths or None, ctx.cfg.secret_scan_exclude,
                            ctx.cfg.secret_scan_allow, skip_files=skip_files)
    notes = []
    if result.allowed:
        notes.append(f"{result.allowed} allowed")
    if skip_files:
        notes.append("env files in use and not committed left out: "
                     + ", ".join(os.path.relpath(p, root) for p in skip_files))
    if result.skipped_large:
        notes.append(f"{len(result.skipped_large)} files over 1 MB left out")
    note = f" ({'; '.join(notes)})" if notes else ""
    details = [f.describe() for f in result.findings]
    if result.findings:
        files = sorted({f.path for f in result.findings})
        first = "; ".join(f"{f.path}:{f.line} {f.rule} {f.masked}" for f in result.findings[:3])
        more = f"; and {len(result.findings) - 3} more" if len(result.findings) > 3 else ""
        return Outcome(False, f"{len(result.findings)} possible credential(s) committed in {len(files)} file(s): {first}{more}{note}"
                              ": move them to env files or a vault, or allow them (secret_scan_allow)", details)
    return Outcome(True, f"no committed credentials in {_plural(result.files_scanned, 'file')}{note}", details)


def gate_checks(ctx):
    """[(check name, function)] for each configured gate."""
    out = []
    for gate in ctx.cfg.gates:
        out.append((f"gate:{gate['name']}", _gate_runner(gate)))
    return out


def _gate_runner(gate):
    def run(ctx):
        ctx.load_secrets()
        cwd = ctx.project._path(gate["chdir"]) if gate["chdir"] else ctx.project.project_src
        env = dict(os.environ)
        env.update(ctx.cfg.environment)
        env.update(gate["environment"])
        rc, seconds, lines = host.run_gate(gate["command"], cwd, int(gate["timeout"]), env)
        if rc == 0:
            return Outcome(True, f"`{gate['command']}` passed (exit 0 after {seconds:.1f}s)", lines[-5:])
        last = next((ln.strip() for ln in reversed(lines) if ln.strip()), "")
        status = f"exit {rc}" if rc is not None else "did not finish"
        return Outcome(False, f"`{gate['command']}` failed ({status} after {seconds:.1f}s){': ' + last[:200] if last else ''}", lines)
    return run


CHECKS = (
    ("engine", check_engine), ("engine_access", check_engine_access), ("compose_version", check_compose_version),
    ("disk", check_disk), ("network", check_network), ("env_files", check_env_files), ("env_vars", check_env_vars),
    ("ports", check_ports), ("compose_config", check_compose_config), ("healthchecks", check_healthchecks),
    ("resource_limits", check_resource_limits), ("depends_on", check_depends_on), ("tokens", check_tokens),
    ("home_assistant", check_home_assistant), ("influxdb", check_influxdb), ("secret_scan", check_secret_scan),
)


def run_preflight(params):
    """Runs every check that is not skipped and returns the summary (see the module docstring)."""
    cfg = Config(params)
    ctx = Context(cfg)
    ctx.load_secrets()
    checks = []
    skipped = []
    ordered = []  # (check, result-or-'skip', why) in order, for the summary
    if not os.path.isdir(cfg.project_src):
        raise PreflightError(f"project_src {cfg.project_src} does not exist or is not a folder")
    try:
        plan = list(CHECKS) + gate_checks(ctx)
        for name, fn in plan:
            if cfg.skipped(name):
                skipped.append({"check": name, "why": cfg.skip_reason(name)})
                if not cfg.only:  # with `only`, the summary lists just the selected checks
                    ordered.append((name, "skip", skipped[-1]["why"]))
                continue
            try:
                outcome = fn(ctx)
            except Skip as exc:
                skipped.append({"check": name, "why": ctx.redact(str(exc))})
                ordered.append((name, "skip", skipped[-1]["why"]))
                continue
            except Exception as exc:  # a check must never hide the others
                outcome = Outcome(False, f"the check could not run: {exc.__class__.__name__}: {host.short_error(exc)}")
            result = "pass" if outcome.ok else cfg.severity(name)
            entry = {"check": name, "result": result, "why": ctx.redact(outcome.why),
                     "details": [ctx.redact(d) for d in outcome.details]}
            checks.append(entry)
            ordered.append((name, result, entry["why"]))
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
    failed = [c["check"] for c in checks if c["result"] == "fail"]
    warned = [c["check"] for c in checks if c["result"] == "warn"]
    summary = [f"{res.upper():<4}  {name}: {why}" for name, res, why in ordered]
    if failed:
        msg = (f"preflight: {len(failed)} of {len(checks)} checks failed ({', '.join(failed)}); "
               "nothing was built or deployed: fix them and run again")
    elif warned:
        msg = f"preflight: {counts['pass']} checks passed, {len(warned)} warned ({', '.join(warned)})"
    elif not checks:
        msg = "preflight: no check ran (every one skipped or not configured)"
    else:
        msg = f"preflight: {_plural(len(checks), 'check')} passed"
    return {
        "checks": checks,
        "skipped_checks": skipped,
        "counts": counts,
        "failed_checks": failed,
        "warned_checks": warned,
        "summary": summary,
        "msg": ctx.redact(msg),
        "project_name": ctx.redact(ctx.project.project_name(ask_compose=False)),
    }
