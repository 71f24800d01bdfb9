# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight checks judged once per compose project: env files and variables, ports, the
Compose model, bind mounts, healthchecks, limits, dependencies and tokens.

Private to the homeiq.deploy collection: not a public API, it may change without notice.
Each check takes the shared context (``ctx.project`` is the project being judged) and returns
an ``Outcome`` or raises ``Skip``. Relative paths follow Compose's rule (see ``ComposeProject``).
"""
from __future__ import annotations

import os

from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_host as host
from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_project as proj
from ansible_collections.homeiq.deploy.plugins.module_utils import _secrets_scan as scan
from ansible_collections.homeiq.deploy.plugins.module_utils._preflight_base import Outcome, Skip, is_secret_name, plural


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
    listed_real = {os.path.realpath(p) for p in listed}
    for service, path, required in refs:
        entry = by_path.setdefault(path, {"services": [], "required": False, "listed": os.path.realpath(path) in listed_real})
        entry["services"].append(service)
        entry["required"] = entry["required"] or required
    for path, entry in by_path.items():
        rel = project.show(path)
        users = ", ".join(entry["services"])
        if entry["listed"]:
            details.append(f"{rel} (env_file of {users}): the same file as the project's env file")
            continue
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
    names = list(dict.fromkeys(project.show(p) for p in list(listed) + [p for p, e in by_path.items() if not e["listed"]]))
    return Outcome(True, f"{plural(len(names), 'env file')} present and readable: {', '.join(names)}", details)


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
    return Outcome(True, f"{plural(len(required), 'required variable')}, each set: " + ", ".join(required))


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
        return Outcome(True, f"{plural(len(wanted), 'published host port')}, each free or held by this project's own "
                             f"containers ({own} held by them){note}", details)
    return Outcome(True, f"{plural(len(wanted), 'published host port')}, each free{note}", details)


# --- configuration checks -------------------------------------------------------------------


def check_compose_config(ctx):
    data, err = ctx.project.config()
    if data is None:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        return Outcome(False, "Compose rejects the project: " + (lines[0] if lines else err), lines)
    services = data.get("services") or {}
    profiles = ", ".join(ctx.project.active_profiles()) or "none"
    env_files = ", ".join(ctx.project.show(p) for p in ctx.project.env_file_paths()) or "none"
    return Outcome(True, f"Compose accepts the project {data.get('name')!r}: {plural(len(services), 'service')} "
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
        if proj.dockerfile_healthcheck(svc, svc.get("_base_dir") or ctx.project.project_dir()):
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
    return Outcome(True, f"{plural(len(services), 'service')}, each with a healthcheck{ex}{note}", details)


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
    return Outcome(True, f"{plural(len(services), 'service')}, each with memory and CPU limits{ex}{note}", details)


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
    return Outcome(True, f"{plural(edges, 'dependency')} between {plural(len(services), 'service')}: all defined, no cycle{note}")


def _example_values(ctx):
    files = [ctx.project._path(f) for f in ctx.cfg.env_example_files]
    if not files:
        seen = []
        for env_file in ctx.project.env_file_paths() or [os.path.join(ctx.project.project_dir(), ".env")]:
            for suffix in (".example", ".sample", ".template", ".dist"):
                seen.append(env_file + suffix)
        for folder in (ctx.project.project_dir(), ctx.project.project_src):
            for name in (".env.example", "env.example", "example.env", ".env.sample"):
                seen.append(os.path.join(folder, name))
        files = [f for f in dict.fromkeys(seen) if os.path.exists(f)]
    values = {}
    for f in files:
        try:
            values[ctx.project.show(f)] = proj.read_env_file(f, {})
        except proj.EnvFileError:
            continue
    return values


def _committed_default_problems(ctx, names):
    """[(name, problem)] for secret variables that fall back to a default committed in a compose file."""
    project = ctx.project
    env = project.env()
    files = project.env_file_paths()
    if files:
        where = "env file(s) " + ", ".join(project.show(p) for p in files) + " and the environment"
        target = project.show(files[0])
    else:
        default_env = project.show(os.path.join(project.project_dir(), ".env"))
        where = f"the environment (no env file given, and no {default_env})"
        target = f"an env file (env_files) or {default_env}"
    by_name = {}
    for path, default in project.committed_defaults():
        if default.name in names or is_secret_name(default.name):
            spots = by_name.setdefault(default.name, [])
            spot = f"{project.show(path)} line {default.line}"
            if spot not in spots:
                spots.append(spot)
    problems = []
    for name in sorted(by_name):
        state = "empty" if name in env else "not set"
        problems.append((name, f"{name} is {state} in {where}, so {'; '.join(by_name[name])} uses the default committed "
                        f"there (********): set {name} in {target}"))
    return problems


def _committed_literals(ctx, names):
    """{(name, literal): 'file line N'} of every committed default of a secret variable."""
    out = {}
    for path, default in ctx.project.committed_defaults(all_defaults=True):
        if (default.name in names or is_secret_name(default.name)) and default.literal.strip():
            out.setdefault((default.name, default.literal.strip()), f"{ctx.project.show(path)} line {default.line}")
    return out


def check_tokens(ctx):
    ctx.load_secrets()
    env = ctx.project.deploy_env()
    files_env = ctx.project.defined_env()
    extra = ctx.cfg.placeholder_values
    names = set(ctx.cfg.secret_vars)
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
    defaults = _committed_default_problems(ctx, names)
    if not entries and not missing and not defaults:
        raise Skip("no token or secret variables found (secret_vars lists more)")
    examples = _example_values(ctx)
    committed = _committed_literals(ctx, names)
    problems = [f"{m} is not set" for m in missing] + [text for _name, text in defaults]
    good = []
    for name, value in entries:
        if any(name == n for n, _text in defaults):
            continue  # already reported, with the default it falls back to
        reason = scan.placeholder_reason(value, extra)
        if reason is None:
            for example, ex_values in examples.items():
                ex = ex_values.get(name)
                if ex is not None and str(ex).strip() and str(ex).strip() == str(value).strip():
                    reason = f"the same value as in {example}"
                    break
        if reason is None and (name, str(value).strip()) in committed:
            reason = f"the default committed in {committed[(name, str(value).strip())]}"
        if reason:
            problems.append(f"{name} is {reason}")
        else:
            good.append(name)
    if problems:
        return Outcome(False, "; ".join(problems) + ": set real values", problems)
    return Outcome(True, f"{plural(len(good), 'token')} set, none a placeholder, known default or example value: "
                         + ", ".join(good))


def check_mounts(ctx):
    services, note = _model_or_skip(ctx)
    missing = []
    details = []
    for name in sorted(services):
        svc = services[name]
        for source, target in proj.bind_mounts(svc, svc.get("_base_dir") or ctx.project.project_dir()):
            shown = ctx.project.show(source)
            if os.path.exists(source):
                details.append(f"{name}: {shown} -> {target}")
            else:
                missing.append(f"{shown} (bind mount of {name} at {target})")
    if not missing and not details:
        raise Skip("no service bind-mounts a host path")
    details.extend(f"missing: {m}" for m in missing)
    if missing:
        base = ctx.project.show(ctx.project.project_dir()) if ctx.project.project_dir() != ctx.project.project_src else "."
        return Outcome(False, "missing: " + "; ".join(missing) + note + f": create them or fix the paths (relative paths "
                       f"resolve from the project directory {base}; Compose would create empty folders in their place)",
                       details)
    return Outcome(True, f"{plural(len(details), 'bind mount')}, each source present{note}", details)


CHECKS = (
    ("env_files", check_env_files), ("env_vars", check_env_vars), ("ports", check_ports),
    ("compose_config", check_compose_config), ("mounts", check_mounts), ("healthchecks", check_healthchecks),
    ("resource_limits", check_resource_limits), ("depends_on", check_depends_on), ("tokens", check_tokens),
)
