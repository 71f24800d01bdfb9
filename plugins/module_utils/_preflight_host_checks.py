# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight checks that run once per host: the engine, Compose, disk, network, Home
Assistant, InfluxDB, the secret scan of the checkout and the gate commands.

Private to the homeiq.deploy collection: not a public API, it may change without notice.
Each check takes the shared context (see ``_preflight.Context``) and returns an ``Outcome``
or raises ``Skip``.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_baseline as bl
from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_host as host
from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_http as http
from ansible_collections.homeiq.deploy.plugins.module_utils import _secrets_scan as scan
from ansible_collections.homeiq.deploy.plugins.module_utils._compose import ComposeError
from ansible_collections.homeiq.deploy.plugins.module_utils._preflight_base import Outcome, Skip, plural


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


def _env_files_in_use(ctx):
    in_use = []
    for project in ctx.projects:
        in_use += project.env_file_paths()
        raw = project.raw()
        if not raw.error:
            in_use += [path for _service, path, _required in raw.env_file_refs()]
    return [os.path.abspath(p) for p in dict.fromkeys(in_use) if os.path.exists(p)]


def check_secret_scan(ctx):
    cfg = ctx.cfg
    root = ctx.project.project_src
    if not os.path.isdir(root):
        return Outcome(False, f"project_src {root} is not a folder")
    env_files = _env_files_in_use(ctx)
    tracked = {os.path.realpath(p) for p in _git_tracked(root, env_files)}
    skip_files = [p for p in env_files if os.path.realpath(p) not in tracked]
    exclude = list(cfg.secret_scan_exclude)
    path = ctx.project._path(cfg.secret_scan_baseline) if cfg.secret_scan_baseline else None
    shown = ctx.project.show(path) if path else None
    if path:
        exclude.append(os.path.relpath(path, root))  # the baseline holds fingerprints, not secrets
    try:
        baseline = bl.load(path) if path else bl.Baseline(None)
    except bl.BaselineError as exc:
        return Outcome(False, f"{exc}: fix or delete it (rewrite it with secret_scan_write_baseline)")
    result = scan.scan_tree(root, cfg.secret_scan_paths or None, exclude, cfg.secret_scan_allow, skip_files=skip_files)
    notes = []
    if result.allowed:
        notes.append(f"{result.allowed} allowed")
    if skip_files:
        notes.append("env files in use and not committed left out: " + ", ".join(os.path.relpath(p, root) for p in skip_files))
    if result.skipped_large:
        notes.append(f"{len(result.skipped_large)} files over 1 MB left out")
    if cfg.secret_scan_write_baseline:
        if not path:
            return Outcome(False, "secret_scan_write_baseline needs secret_scan_baseline, the file to write")
        if baseline.format == "detect-secrets":
            return Outcome(False, f"{shown} is a detect-secrets baseline, which this check reads but does not write: "
                                  "point secret_scan_baseline at another file to write one")
        changed = bl.write(path, bl.render(result.findings), cfg.check_mode)
        ctx.changed = ctx.changed or changed  # in check mode: would change
        verb = ("would be written" if changed else "is up to date") if cfg.check_mode else ("written" if changed else "is up to date")
        note = f" ({'; '.join(notes)})" if notes else ""
        return Outcome(True, f"baseline {shown} {verb}: {plural(len(result.findings), 'finding')} accepted by it{note}; "
                             "commit it with the project", [f.describe() for f in result.findings])
    new, accepted, stale = baseline.split(result.findings)
    if accepted:
        notes.insert(0, f"{len(accepted)} accepted by the baseline {shown}")
    if stale:
        notes.append(f"{plural(stale, 'baseline entry')} no longer found (rewrite the baseline to drop them)")
    note = f" ({'; '.join(notes)})" if notes else ""
    details = [f.describe() for f in new] + [f.describe() + " [accepted by the baseline]" for f in accepted]
    if new:
        files = sorted({f.path for f in new})
        first = "; ".join(f"{f.path}:{f.line} {f.rule} {f.masked}" for f in new[:3])
        more = f"; and {len(new) - 3} more" if len(new) > 3 else ""
        word = "new possible credential(s)" if baseline.format else "possible credential(s)"
        return Outcome(False, f"{len(new)} {word} committed in {len(files)} file(s): {first}{more}{note}"
                              ": move them to env files or a vault, or accept them (secret_scan_allow, or rewrite the "
                              "baseline with secret_scan_write_baseline)", details)
    return Outcome(True, f"no {'new ' if accepted else ''}committed credentials in {plural(result.files_scanned, 'file')}{note}",
                   details)


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


# Host checks before and after the per-project ones, in the summary's order.
CHECKS_BEFORE = (
    ("engine", check_engine), ("engine_access", check_engine_access), ("compose_version", check_compose_version),
    ("disk", check_disk), ("network", check_network),
)
CHECKS_AFTER = (
    ("home_assistant", check_home_assistant), ("influxdb", check_influxdb), ("secret_scan", check_secret_scan),
)
