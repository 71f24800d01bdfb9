# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judging compose service definitions for the preflight checks: healthchecks, limits,
dependencies, published ports.

Private to the homeiq.deploy collection: not a public API, it may change without notice.
"""
from __future__ import annotations

import os
import re


def depends_items_dict(dep):
    if isinstance(dep, dict):
        return {str(k): (v if isinstance(v, dict) else {}) for k, v in dep.items()}
    if isinstance(dep, list):
        return {str(k): {} for k in dep}
    return {}


def merge_depends(a, b):
    out = dict(depends_items_dict(a))
    out.update(depends_items_dict(b))
    return out


def healthcheck_state(svc):
    """'declared', 'disabled' or None for a service definition."""
    hc = svc.get("healthcheck")
    if not isinstance(hc, dict):
        return None
    if hc.get("disable") in (True, "true", "True"):
        return "disabled"
    test = hc.get("test")
    if isinstance(test, list) and test and str(test[0]).upper() == "NONE":
        return "disabled"
    if isinstance(test, str) and test.strip().upper() == "NONE":
        return "disabled"
    if not test:
        return None
    return "declared"


def dockerfile_healthcheck(svc, base_dir):
    """True when the service's Dockerfile declares a HEALTHCHECK (other than NONE)."""
    build = svc.get("build")
    if not build:
        return False
    if isinstance(build, str):
        context, dockerfile = build, "Dockerfile"
    elif isinstance(build, dict):
        context = build.get("context") or "."
        dockerfile = build.get("dockerfile") or "Dockerfile"
    else:
        return False
    if "://" in str(context):
        return False
    context = context if os.path.isabs(context) else os.path.join(base_dir, context)
    path = dockerfile if os.path.isabs(dockerfile) else os.path.join(context, dockerfile)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                m = re.match(r"\s*HEALTHCHECK\s+(\S+)", line, re.I)
                if m and m.group(1).upper() != "NONE":
                    return True
    except OSError:
        return False
    return False


def _nonzero(value):
    if value in (None, "", 0, "0", 0.0):
        return False
    try:
        return float(str(value).rstrip("bkmgBKMG").strip() or 0) != 0
    except ValueError:
        return True


def memory_limit(svc):
    limits = (((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {})
    for v in (limits.get("memory"), svc.get("mem_limit")):
        if _nonzero(v):
            return v
    return None


def cpu_limit(svc):
    limits = (((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {})
    for v in (limits.get("cpus"), svc.get("cpus"), svc.get("cpu_quota")):
        if _nonzero(v):
            return v
    return None


def dependencies(svc):
    """[(name, required, kind)] a service depends on: depends_on, volumes_from, network_mode."""
    out = []
    for name, spec in depends_items_dict(svc.get("depends_on")).items():
        required = spec.get("required", True)
        out.append((name, required not in (False, "false", "False"), "depends_on"))
    for vf in svc.get("volumes_from") or []:
        vf = str(vf)
        if vf.startswith("container:"):
            continue
        name = vf[len("service:"):] if vf.startswith("service:") else vf
        out.append((name.split(":", maxsplit=1)[0], True, "volumes_from"))
    nm = svc.get("network_mode")
    if isinstance(nm, str) and nm.startswith("service:"):
        out.append((nm[len("service:"):], True, "network_mode"))
    return out


def find_cycles(graph):
    """Every distinct dependency cycle of {node: [deps]} as a list of node lists (a -> b -> a)."""
    cycles = []
    seen_keys = set()
    state = {}
    stack = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, ()):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                body = cycle[:-1]
                k = min(range(len(body)), key=lambda i: body[i])
                canon = tuple(body[k:] + body[:k])
                if canon not in seen_keys:
                    seen_keys.add(canon)
                    cycles.append(list(canon) + [canon[0]])
            elif state.get(dep) is None:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            visit(node)
    return cycles


def _expand_range(text):
    text = str(text).strip()
    if not text:
        return []
    if "-" in text:
        lo, hi = text.split("-", 1)
        lo, hi = int(lo), int(hi)
        if hi < lo or hi - lo > 1000:
            raise ValueError(text)
        return list(range(lo, hi + 1))
    return [int(text)]


def parse_port_entry(entry):
    """[(host_ip, host_port, protocol)] a compose `ports` entry publishes (empty when none is fixed)."""
    if isinstance(entry, dict):
        published = entry.get("published")
        if published in (None, ""):
            return []
        ip = entry.get("host_ip") or ""
        proto = (entry.get("protocol") or "tcp").lower()
        try:
            return [(ip, p, proto) for p in _expand_range(published)]
        except ValueError:
            return []
    text = str(entry).strip()
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
        proto = proto.lower()
    ip = ""
    if text.startswith("["):
        close = text.find("]")
        ip = text[1:close]
        rest = text[close + 1:].lstrip(":")
        parts = rest.split(":")
        host = parts[0] if len(parts) == 2 else ""
    else:
        parts = text.split(":")
        if len(parts) == 1:
            return []
        if len(parts) == 2:
            host = parts[0]
        elif len(parts) == 3:
            ip, host = parts[0], parts[1]
        else:
            ip, host = ":".join(parts[:-2]), parts[-2]
    try:
        return [(ip, p, proto) for p in _expand_range(host)]
    except ValueError:
        return []


def published_ports(services):
    """[(service, host_ip, port, protocol)] for every fixed host port the services publish."""
    out = []
    for name in sorted(services):
        for entry in services[name].get("ports") or []:
            for ip, port, proto in parse_port_entry(entry):
                out.append((name, ip, port, proto))
    return out


def bind_mounts(svc, base_dir):
    """[(source, target)] of the service's bind mounts, sources made absolute from base_dir (the
    project directory, as Compose resolves them). Named volumes and tmpfs are left out."""
    out = []
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            if entry.get("type") != "bind" or not entry.get("source"):
                continue
            source, target = str(entry["source"]), str(entry.get("target") or "")
        else:
            parts = str(entry).split(":")
            if len(parts) < 2:
                continue  # an anonymous volume
            source, target = parts[0], parts[1]
            if not source.startswith((".", "/", "~")):
                continue  # a named volume
        source = os.path.expanduser(source)
        if not os.path.isabs(source):
            source = os.path.normpath(os.path.join(base_dir, source))
        out.append((source, target))
    return out
