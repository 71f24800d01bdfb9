# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Route-order analysis for homeiq.deploy.route_order_check.

Private to the homeiq.deploy collection: not a public API, may change without notice.

A route is unreachable for an HTTP method when an earlier route with that method matches
every URL it matches: Starlette walks the routes in registration order and the first full
match (path and method) wins. Type annotations do not protect (Starlette matches
``{synergy_id}`` as a string before FastAPI validates it); only path convertors do
(``{synergy_id:int}`` matches digits only). This module judges that segment by segment.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# Starlette's own parameter syntax (starlette.routing.PARAM_REGEX).
PARAM_RE = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(:[a-zA-Z_][a-zA-Z0-9_]*)?}")

# Starlette's built-in convertors and the regex each one matches (starlette.convertors).
BUILTIN_CONVERTORS = {
    "str": "[^/]+",
    "path": ".*",
    "int": "[0-9]+",
    "float": r"[0-9]+(\.[0-9]+)?",
    "uuid": "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
}

# For single-parameter segments: which convertors' languages contain which (a covers b).
_COVERS = {
    "str": {"str", "int", "float", "uuid"},
    "int": {"int"},
    "float": {"float", "int"},
    "uuid": {"uuid"},
}

ANY_METHOD = "*"
OPENAPI_NOTE = (
    "OpenAPI documents drop path convertors ({task_id:int} appears as {task_id}), so a route "
    "protected by a convertor is judged here as if it had none; confirm findings with mode "
    "container or source"
)


class RouteCheckError(Exception):
    """Bad input or an unreadable route source; the message is one line a person can act on."""


@dataclass
class Part:
    literal: str | None = None
    param: str | None = None
    convertor: str | None = None


@dataclass
class Segment:
    parts: list

    @property
    def is_literal(self):
        return all(p.literal is not None for p in self.parts)

    @property
    def text(self):
        return "".join(p.literal for p in self.parts if p.literal is not None)

    @property
    def single(self):
        """The convertor name when the segment is exactly one parameter, else None."""
        if len(self.parts) == 1 and self.parts[0].param is not None:
            return self.parts[0].convertor
        return None

    @property
    def has_path(self):
        return any(p.convertor == "path" for p in self.parts)

    def signature(self):
        return tuple((p.literal, p.convertor) for p in self.parts)


@dataclass
class Route:
    index: int
    path: str
    methods: list | None  # None: every method (a mount)
    name: str | None = None
    kind: str = "http"
    source: str | None = None
    app: str | None = None
    branch: tuple = ()  # source mode: ((if id, side, "file:line"), ...) the route depends on
    segments: list = field(default_factory=list, repr=False)

    def as_dict(self):
        out = {"index": self.index, "path": self.path, "methods": self.methods_list(), "name": self.name}
        if self.kind != "http":
            out["kind"] = self.kind
        if self.source:
            out["source"] = self.source
        if self.app:
            out["app"] = self.app
        return out

    def methods_list(self):
        return [ANY_METHOD] if self.methods is None else sorted(self.methods)


def split_path(path):
    """Splits a route path into segments of literal text and parameters, as Starlette compiles it."""
    if not path.startswith("/"):
        path = "/" + path
    segments = []
    for raw in path.split("/")[1:]:
        parts = []
        pos = 0
        for m in PARAM_RE.finditer(raw):
            if m.start() > pos:
                parts.append(Part(literal=raw[pos:m.start()]))
            conv = (m.group(2) or ":str")[1:]
            parts.append(Part(param=m.group(1), convertor=conv))
            pos = m.end()
        if pos < len(raw) or not parts:
            parts.append(Part(literal=raw[pos:]))
        segments.append(Segment(parts))
    return segments


def path_format(path):
    """The path with convertors removed, as OpenAPI shows it: /a/{x:int} -> /a/{x}."""
    return PARAM_RE.sub(lambda m: "{%s}" % m.group(1), path)


def _segment_regex(seg, convertors):
    out = []
    for p in seg.parts:
        if p.literal is not None:
            out.append(re.escape(p.literal))
        else:
            rx = convertors.get(p.convertor)
            if rx is None:
                return None
            out.append("(?:%s)" % rx)
    return re.compile("".join(out))


def segment_covers(a, b, convertors):
    """True when segment pattern `a` matches every string segment pattern `b` matches."""
    if a.is_literal:
        return b.is_literal and a.text == b.text
    if b.is_literal:
        rx = _segment_regex(a, convertors)
        return bool(rx is not None and not a.has_path and rx.fullmatch(b.text))
    if a.signature() == b.signature():
        return True
    a_single, b_single = a.single, b.single
    if a_single == "str":
        # any non-empty text without a slash: every segment pattern without a path convertor
        if b.has_path:
            return False
        if b_single is not None and b_single not in BUILTIN_CONVERTORS:
            rx = convertors.get(b_single)
            return rx is not None and "/" not in rx and "." not in rx.replace("\\.", "")
        return True
    if a_single in _COVERS and b_single is not None:
        return b_single in _COVERS[a_single]
    if a_single is not None and a_single == b_single:
        return True
    return False


def path_covers(a_segs, b_segs, convertors, i=0, j=0):
    """True when the path pattern a matches every path pattern b matches (segment by segment)."""
    while True:
        if i == len(a_segs) and j == len(b_segs):
            return True
        if i == len(a_segs) or j == len(b_segs):
            return False
        a, b = a_segs[i], b_segs[j]
        if a.single == "path":
            if i == len(a_segs) - 1:
                return True  # {p:path} at the end takes every remaining segment
            return any(path_covers(a_segs, b_segs, convertors, i + 1, k) for k in range(j + 1, len(b_segs) + 1))
        if b.single == "path" or b.has_path:
            return False
        if not segment_covers(a, b, convertors):
            return False
        i += 1
        j += 1


def _common_methods(a, b):
    if a.methods is None and b.methods is None:
        return {ANY_METHOD}
    if a.methods is None:
        return set(b.methods)
    if b.methods is None:
        return set()  # a later catch-all mount still gets what no earlier route takes
    return set(a.methods) & set(b.methods)


def make_routes(raw_routes, app=None):
    """Routes in registration order from dicts {path, methods, name, kind, source, app}."""
    routes = []
    for idx, raw in enumerate(raw_routes):
        path = raw.get("path") or "/"
        methods = raw.get("methods")
        if methods is not None:
            methods = sorted({str(m).upper() for m in methods})
        r = Route(index=idx, path=path, methods=methods, name=raw.get("name"), kind=raw.get("kind") or "http",
                  source=raw.get("source"), app=raw.get("app", app), branch=tuple(raw.get("branch") or ()))
        r.segments = split_path(path)
        routes.append(r)
    return routes


def _exclusive(a, b):
    """True when the two routes sit on different sides of one if statement."""
    sides = {entry[0]: entry[1] for entry in a.branch}
    return any(entry[0] in sides and sides[entry[0]] != entry[1] for entry in b.branch)


def _conditions(a, b):
    seen, out = set(), []
    for entry in a.branch + b.branch:
        key, side, where = entry[0], entry[1], entry[2]
        if (key, side) not in seen:
            seen.add((key, side))
            out.append("%s branch of the if at %s" % ("first" if side == 0 else "else", where))
    return out


def find_shadowed(routes, convertors=None):
    """Each (route, earlier route, methods) where the earlier route takes every request of the later one."""
    conv = dict(BUILTIN_CONVERTORS)
    conv.update(convertors or {})
    found = []
    for j, b in enumerate(routes):
        remaining = {ANY_METHOD} if b.methods is None else set(b.methods)
        by_shadower = {}
        for a in routes[:j]:
            if not remaining:
                break
            if a.app != b.app or a.kind == "websocket" and b.kind != "websocket" or _exclusive(a, b):
                continue
            common = _common_methods(a, b) & remaining if b.methods is not None else (
                {ANY_METHOD} if a.methods is None else set())
            if not common:
                continue
            if path_covers(a.segments, b.segments, conv):
                by_shadower.setdefault(a.index, (a, set()))[1].update(common)
                remaining -= common
        for a, methods in by_shadower.values():
            entry = {
                "path": b.path,
                "methods": sorted(methods),
                "index": b.index,
                "name": b.name,
                "shadowed_by": a.path,
                "shadowed_by_index": a.index,
                "shadowed_by_name": a.name,
            }
            if b.source:
                entry["source"] = b.source
            if a.source:
                entry["shadowed_by_source"] = a.source
            if b.app:
                entry["app"] = b.app
            if a.branch or b.branch:
                entry["conditions"] = _conditions(a, b)
            found.append(entry)
    return found


def _find_index(routes, path):
    for r in routes:
        if r.path == path:
            return r.index
    fmt = path_format(path)
    for r in routes:
        if path_format(r.path) == fmt:
            return r.index
    return None


def check_expect_before(routes, pairs):
    """Problems with the [earlier, later] pairs: out of order, or a path that is not registered."""
    problems = []
    apps = sorted({r.app for r in routes}, key=lambda x: x or "")
    for pair in pairs or []:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise RouteCheckError("expect_before entries must be [earlier, later] pairs of paths; got %r" % (pair,))
        earlier, later = str(pair[0]), str(pair[1])
        hits = []
        for app in apps:
            scoped = [r for r in routes if r.app == app]
            ei, li = _find_index(scoped, earlier), _find_index(scoped, later)
            if ei is not None or li is not None:
                hits.append((app, ei, li))
        if not hits:
            problems.append({"earlier": earlier, "later": later, "earlier_index": None, "later_index": None,
                             "problem": "neither path is registered"})
            continue
        for app, ei, li in hits:
            entry = {"earlier": earlier, "later": later, "earlier_index": ei, "later_index": li}
            if app:
                entry["app"] = app
            if ei is None or li is None:
                entry["problem"] = "%s is not registered" % (earlier if ei is None else later)
            elif ei > li:
                entry["problem"] = "registered in the wrong order"
            else:
                continue
            problems.append(entry)
    return problems


def _allowed(entry, allow):
    for item in allow or []:
        item = str(item).strip()
        if item == entry["path"] or item == path_format(entry["path"]):
            return True
        method, _sep, p = item.partition(" ")
        if p and method.upper() in entry["methods"] and (p == entry["path"] or p == path_format(entry["path"])):
            return True
    return False


def analyse(raw_routes, path_filter=None, expect_before=None, allow=None, convertors=None, notes=None):
    """The module's result (without `changed`) for routes in registration order."""
    try:
        flt = re.compile(path_filter) if path_filter else None
    except re.error as exc:
        raise RouteCheckError("path_filter is not a valid regular expression: %s" % exc)
    routes = make_routes(raw_routes)
    shadowed_all = find_shadowed(routes, convertors)
    if flt is not None:
        shadowed_all = [s for s in shadowed_all if flt.search(s["path"])]
        shown = [r for r in routes if flt.search(r.path)]
    else:
        shown = routes
    shadowed = [s for s in shadowed_all if not _allowed(s, allow)]
    allowed = [s for s in shadowed_all if _allowed(s, allow)]
    order = check_expect_before(routes, expect_before)
    return {
        "ok": not shadowed and not order,
        "routes": [r.as_dict() for r in shown],
        "shadowed": shadowed,
        "allowed": allowed,
        "out_of_order": order,
        "notes": list(notes or []),
    }


def failure_message(result, where):
    """One line naming what is wrong and what to do."""
    bits = []
    for s in result["shadowed"][:5]:
        bits.append("%s %s (shadowed by %s)" % ("/".join(s["methods"]), s["path"], s["shadowed_by"]))
    if len(result["shadowed"]) > 5:
        bits.append("and %d more" % (len(result["shadowed"]) - 5))
    for o in result["out_of_order"]:
        bits.append("expected %s before %s: %s" % (o["earlier"], o["later"], o["problem"]))
    n = len(result["shadowed"])
    head = "%d unreachable route%s in %s" % (n, "" if n == 1 else "s", where) if n else "route order problems in %s" % where
    return "%s: %s. Register the fixed paths before the parameterised ones, use a path convertor " \
           "such as {id:int}, or list accepted paths in allow" % (head, "; ".join(bits))
