# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Static route discovery in FastAPI source trees for homeiq.deploy.route_order_check.

Private to the homeiq.deploy collection: not a public API, may change without notice.

Nothing is imported or executed: the tree is parsed with ``ast``. What is understood:
``FastAPI(...)`` and ``APIRouter(prefix=...)`` objects (module variables or attributes such as
``self.router``), route decorators and ``add_api_route`` calls in execution order (stacked
decorators apply bottom-up), ``include_router(router, prefix=...)`` on apps and routers in
source order, imports (absolute, relative, ``as`` aliases, package re-exports), string
constants used as prefixes, functions that build and return a router, and loops over a
literal list of routers. Whatever cannot be resolved is reported as a note, and routers that
no app can be shown to include are analysed on their own so their bugs are still found.
"""
from __future__ import annotations

import ast
import os

HTTP_DECORATORS = {"get", "post", "put", "delete", "patch", "options", "head", "trace"}
DEFAULT_EXCLUDES = {".git", "__pycache__", "node_modules", ".venv", "venv", "site-packages", ".tox",
                    "tests", "test", ".mypy_cache", ".pytest_cache", "build", "dist"}


class SourceError(Exception):
    """The tree cannot be analysed; one line a person can act on."""


def _dotted(node):
    """'a.b.c' for Name/Attribute chains, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _simple_test(node):
    """(name, negated) for `if name:` and `if not name:`, else None."""
    if isinstance(node, ast.Name):
        return node.id, False
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and isinstance(node.operand, ast.Name):
        return node.operand.id, True
    return None


def _apply_bindings(branch, bindings):
    """The branch with the ifs decided by `bindings` removed, or None when the route cannot exist."""
    kept = []
    for entry in branch:
        test = entry[3] if len(entry) > 3 else None
        if test is not None and test[0] in bindings:
            truth = bool(bindings[test[0]]) != test[1]
            if truth != (entry[1] == 0):
                return None
            continue
        kept.append(entry)
    return tuple(kept)


class Obj:
    def __init__(self, module, key, kind, prefix, lineno):
        self.module, self.key, self.kind, self.prefix, self.lineno = module, key, kind, prefix, lineno
        self.events = []  # (module name, order, kind, payload)
        self.base = None  # for X = factory(): the object the factory builds, whose routes come first
        self.bindings = {}  # for X = factory(...): the constant arguments of that call
        self.is_template = False

    @property
    def ident(self):
        return "%s:%s" % (self.module.name, self.key)


class Module:
    def __init__(self, name, relpath, tree, is_package):
        self.name, self.relpath, self.tree, self.is_package = name, relpath, tree, is_package
        self.imports = {}     # local name -> ("module", modname) | ("symbol", modname, attr)
        self.constants = {}   # name -> str
        self.objects = {}     # key -> Obj
        self.factories = {}   # function name -> returned variable name
        self.factory_defs = {}  # function name -> its FunctionDef node
        self.pending = []     # (target key, order, kind, payload) before objects are linked
        self.notes = []


class SourceTree:
    def __init__(self, root, excludes=None):
        self.root = os.path.abspath(root)
        self.excludes = DEFAULT_EXCLUDES if excludes is None else set(excludes)
        self.modules = {}
        self.notes = []
        self._load()

    # ---- loading -------------------------------------------------------------------------
    def _files(self):
        if os.path.isfile(self.root):
            yield os.path.dirname(self.root), self.root
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d not in self.excludes and not d.startswith("."))
            for fn in sorted(filenames):
                if fn.endswith(".py") and not fn.startswith("test_"):
                    yield self.root, os.path.join(dirpath, fn)

    def _load(self):
        for base, fpath in self._files():
            rel = os.path.relpath(fpath, base)
            parts = rel[:-3].split(os.sep)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            name = ".".join(parts) or "__init__"
            try:
                with open(fpath, "rb") as fh:
                    tree = ast.parse(fh.read(), filename=rel)
            except (SyntaxError, ValueError) as exc:
                self.notes.append("%s was skipped: it does not parse (%s)" % (rel, exc))
                continue
            except OSError as exc:
                raise SourceError("cannot read %s: %s" % (fpath, exc.strerror or exc))
            mod = Module(name, rel, tree, is_package)
            self.modules[name] = mod
        if not self.modules:
            raise SourceError("no Python files found under %s; point path at the service's source tree" % self.root)
        for mod in self.modules.values():
            self._scan(mod)

    # ---- name resolution -------------------------------------------------------------------
    def _abs_module(self, mod, level, name):
        if level == 0:
            return name
        pkg = mod.name.split(".") if mod.is_package else mod.name.split(".")[:-1]
        if level > 1:
            pkg = pkg[:len(pkg) - (level - 1)]
        return ".".join([p for p in pkg + ([name] if name else []) if p])

    def find_module(self, name, near=None):
        """The module called `name`, matched on whole trailing components (src.main also finds
        services.data-api.src.main); the candidate sharing most leading components with `near` wins."""
        if name in self.modules:
            return self.modules[name]
        cands = [m for n, m in self.modules.items() if n.endswith("." + name)]
        if not cands:
            return None
        if near is None or len(cands) == 1:
            return cands[0]
        near_parts = near.name.split(".")

        def shared(m):
            n = 0
            for a, b in zip(m.name.split("."), near_parts):
                if a != b:
                    break
                n += 1
            return n
        return max(cands, key=shared)

    # ---- scanning ------------------------------------------------------------------------
    def _ctor_kind(self, mod, call):
        if not isinstance(call, ast.Call):
            return None
        name = _dotted(call.func)
        if name is None:
            return None
        last = name.rsplit(".", maxsplit=1)[-1]
        target = mod.imports.get(name)
        if target and target[0] == "symbol":
            last = target[2]
        if last == "FastAPI":
            return "app"
        if last == "APIRouter":
            return "router"
        return None

    def string_value(self, mod, node):
        """A str for constant expressions (literals, names of module constants, f-strings and
        + of those), else None."""
        if node is None:
            return ""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in mod.constants:
                return mod.constants[node.id]
            imp = mod.imports.get(node.id)
            if imp and imp[0] == "symbol":
                other = self.find_module(imp[1], mod)
                if other and imp[2] in other.constants:
                    return other.constants[imp[2]]
            return None
        if isinstance(node, ast.Attribute):
            base = _dotted(node.value)
            other = self._module_for(mod, base) if base else None
            if other and node.attr in other.constants:
                return other.constants[node.attr]
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.string_value(mod, node.left), self.string_value(mod, node.right)
            return None if left is None or right is None else left + right
        if isinstance(node, ast.JoinedStr):
            out = []
            for v in node.values:
                if isinstance(v, ast.FormattedValue):
                    s = self.string_value(mod, v.value)
                else:
                    s = self.string_value(mod, v)
                if s is None:
                    return None
                out.append(s)
            return "".join(out)
        return None

    def _module_for(self, mod, dotted):
        """The module a local dotted name refers to (an imported module or package)."""
        head, _sep, rest = dotted.partition(".")
        imp = mod.imports.get(head)
        if imp is None:
            return None
        if imp[0] == "module":
            full = imp[1] + ("." + rest if rest else "")
        else:
            full = imp[1] + "." + imp[2] + ("." + rest if rest else "")
        return self.find_module(full, mod)

    @staticmethod
    def _kw(call, name):
        for kw in call.keywords:
            if kw.arg == name:
                return kw.value
        return None

    def _scan(self, mod):
        # imports and constants first (anywhere in the module), then objects, then events in order
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        mod.imports[alias.asname] = ("module", alias.name)
                    else:
                        mod.imports[alias.name.split(".")[0]] = ("module", alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                base = self._abs_module(mod, node.level, node.module or "")
                for alias in node.names:
                    local = alias.asname or alias.name
                    mod.imports[local] = ("symbol", base, alias.name)
        for node in mod.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    mod.constants[node.targets[0].id] = node.value.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and \
                    isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                mod.constants[node.target.id] = node.value.value
        for node in ast.walk(mod.tree):
            targets, value = [], None
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            kind = self._ctor_kind(mod, value) if value is not None else None
            if kind:
                prefix = self.string_value(mod, self._kw(value, "prefix")) if kind == "router" else ""
                for t in targets:
                    key = _dotted(t)
                    if key is None:
                        continue
                    if prefix is None:
                        mod.notes.append("%s:%d: the prefix of %s cannot be determined statically; "
                                         "its routes are listed without it" % (mod.relpath, node.lineno, key))
                        prefix = ""
                    mod.objects[key] = Obj(mod, key, kind, prefix, node.lineno)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for stmt in node.body:
                    if isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Name):
                        mod.factories[node.name] = stmt.value.id
                        mod.factory_defs[node.name] = node
        self._collect_events(mod)

    def _collect_events(self, mod):
        counter = [0]

        def order():
            counter[0] += 1
            return counter[0]

        self._branch = ()
        compound = (ast.With, ast.AsyncWith, ast.Try, ast.For, ast.AsyncFor, ast.While)

        def visit(stmts, loop_env=None):
            for stmt in stmts:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    # decorators run when the def executes; the one nearest the def first
                    for dec in reversed(stmt.decorator_list):
                        self._decorator_event(mod, dec, stmt, order)
                    visit(stmt.body)
                elif isinstance(stmt, ast.For) and isinstance(stmt.target, ast.Name) and \
                        isinstance(stmt.iter, (ast.List, ast.Tuple)):
                    for elt in stmt.iter.elts:
                        env = dict(loop_env or {})
                        env[stmt.target.id] = elt
                        visit(stmt.body, env)
                    visit(stmt.orelse, loop_env)
                elif isinstance(stmt, ast.If):
                    # the two sides of an if never both run: routes on one side cannot shadow the other's
                    saved = self._branch
                    test = _simple_test(stmt.test)
                    for side, body in enumerate((stmt.body, stmt.orelse)):
                        self._branch = saved + ((id(stmt), side, "%s:%d" % (mod.relpath, stmt.lineno), test),)
                        visit(body, loop_env)
                    self._branch = saved
                elif isinstance(stmt, compound):
                    for field in ("body", "orelse", "finalbody"):
                        visit(getattr(stmt, field, None) or [], loop_env)
                    for handler in getattr(stmt, "handlers", None) or []:
                        visit(handler.body, loop_env)
                else:
                    for node in ast.walk(stmt):
                        if isinstance(node, ast.Call):
                            self._call_event(mod, node, order, loop_env)
        visit(mod.tree.body)

    def _obj_for_target(self, mod, target_key):
        obj = mod.objects.get(target_key)
        if obj is None and target_key in mod.imports:
            imp = mod.imports[target_key]
            if imp[0] == "symbol":
                ref = self.resolve_symbol(imp[1], imp[2], mod)
                if ref is not None:
                    return ref
        if obj is None and "." in target_key:
            base, _sep, attr = target_key.rpartition(".")
            other = self._module_for(mod, base)
            if other is not None:
                return other.objects.get(attr)
        return obj

    def _decorator_event(self, mod, dec, func, order):
        if not isinstance(dec, ast.Call) or not isinstance(dec.func, ast.Attribute):
            return
        verb = dec.func.attr
        target = _dotted(dec.func.value)
        if target is None:
            return
        if verb in HTTP_DECORATORS:
            methods = [verb.upper()]
        elif verb == "api_route":
            methods = self._methods(mod, dec, ["GET"])
        elif verb == "route":
            methods = self._methods(mod, dec, ["GET"])
            if "GET" in methods and "HEAD" not in methods:
                methods.append("HEAD")
        elif verb == "websocket":
            methods = ["WEBSOCKET"]
        else:
            return
        path_node = dec.args[0] if dec.args else self._kw(dec, "path")
        self._route_event(mod, target, path_node, methods, func.name, dec.lineno, order)

    def _methods(self, mod, call, default):
        node = self._kw(call, "methods")
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            out = [self.string_value(mod, e) for e in node.elts]
            if all(isinstance(m, str) for m in out):
                return [m.upper() for m in out]
        return list(default)

    def _route_event(self, mod, target, path_node, methods, name, lineno, order):
        path = self.string_value(mod, path_node)
        where = "%s:%d" % (mod.relpath, lineno)
        if path is None:
            mod.notes.append("%s: a route path cannot be determined statically; the route is not checked" % where)
            return
        mod.pending.append((target, order(), "route", {"path": path, "methods": methods, "name": name,
                                                       "source": where, "branch": self._branch}))

    def _call_event(self, mod, call, order, loop_env):
        if not isinstance(call.func, ast.Attribute):
            return
        verb = call.func.attr
        target = _dotted(call.func.value)
        if target is None:
            return
        where = "%s:%d" % (mod.relpath, call.lineno)
        if verb == "include_router":
            router_node = call.args[0] if call.args else self._kw(call, "router")
            if isinstance(router_node, ast.Name) and loop_env and router_node.id in loop_env:
                router_node = loop_env[router_node.id]
            prefix = self.string_value(mod, self._kw(call, "prefix"))
            if prefix is None:
                mod.notes.append("%s: the include prefix cannot be determined statically; "
                                 "the included routes are listed without it" % where)
                prefix = ""
            mod.pending.append((target, order(), "include", {"router": router_node, "prefix": prefix,
                                                             "source": where, "branch": self._branch}))
        elif verb in ("add_api_route", "add_route"):
            path_node = call.args[0] if call.args else self._kw(call, "path")
            endpoint = call.args[1] if len(call.args) > 1 else self._kw(call, "endpoint")
            name = _dotted(endpoint) if endpoint is not None else None
            methods = self._methods(mod, call, ["GET"])
            if verb == "add_route" and "GET" in methods and "HEAD" not in methods:
                methods.append("HEAD")
            self._route_event(mod, target, path_node, methods, name, call.lineno, order)
        elif verb == "add_api_websocket_route":
            path_node = call.args[0] if call.args else self._kw(call, "path")
            self._route_event(mod, target, path_node, ["WEBSOCKET"], None, call.lineno, order)

    # ---- resolution of objects -----------------------------------------------------------------
    def resolve_symbol(self, modname, attr, near, depth=0):
        if depth > 10:
            return None
        other = self.find_module(modname, near)
        if other is not None:
            if attr in other.objects:
                return other.objects[attr]
            imp = other.imports.get(attr)
            if imp and imp[0] == "symbol":
                return self.resolve_symbol(imp[1], imp[2], other, depth + 1)
        return None

    def factory_for_call(self, mod, call):
        """(module, function name) of the local or imported factory a call invokes, or (None, None)."""
        fname = _dotted(call.func)
        if fname in mod.factories:
            return mod, fname
        imp = mod.imports.get(fname or "")
        if imp and imp[0] == "symbol":
            other = self.find_module(imp[1], mod)
            if other and imp[2] in other.factories:
                return other, imp[2]
        return None, None

    @staticmethod
    def call_bindings(fdef, call):
        """Parameter -> constant value for a factory call (defaults, positional and keyword constants)."""
        params = [a.arg for a in fdef.args.args]
        out = {}
        defaults = fdef.args.defaults
        for name, default in zip(params[len(params) - len(defaults):], defaults):
            if isinstance(default, ast.Constant):
                out[name] = default.value
        for name, arg in zip(params, call.args):
            if isinstance(arg, ast.Constant):
                out[name] = arg.value
            else:
                out.pop(name, None)
        for kw in call.keywords:
            if kw.arg and isinstance(kw.value, ast.Constant):
                out[kw.arg] = kw.value.value
            elif kw.arg:
                out.pop(kw.arg, None)
        return out

    def resolve_expr(self, mod, node):
        """The app or router object an include_router argument refers to, or None."""
        if isinstance(node, ast.Call):
            other, fname = self.factory_for_call(mod, node)
            return other.objects.get(other.factories[fname]) if other is not None else None
        key = _dotted(node)
        if key is None:
            return None
        if key in mod.objects:
            return mod.objects[key]
        imp = mod.imports.get(key)
        if imp and imp[0] == "symbol":
            return self.resolve_symbol(imp[1], imp[2], mod)
        if "." in key:
            base, _sep, attr = key.rpartition(".")
            other = self._module_for(mod, base)
            if other is not None:
                if attr in other.objects:
                    return other.objects[attr]
                imp = other.imports.get(attr)
                if imp and imp[0] == "symbol":
                    return self.resolve_symbol(imp[1], imp[2], other)
        return None

    def link(self):
        """Attaches every pending event to its object, in execution order per module."""
        for mod in self.modules.values():
            # app = create_app(): the name refers to the object the factory returns
            for node in mod.tree.body:
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                    obj = self.resolve_expr(mod, node.value)
                    for t in node.targets:
                        key = _dotted(t)
                        if obj is not None and key and key not in mod.objects:
                            # every call builds a new object: same routes from the factory, plus its own
                            clone = Obj(mod, key, obj.kind, obj.prefix, node.lineno)
                            clone.base = obj
                            fmod, fname = self.factory_for_call(mod, node.value)
                            clone.bindings = self.call_bindings(fmod.factory_defs[fname], node.value)
                            obj.is_template = True
                            mod.objects[key] = clone
        for mod in self.modules.values():
            for target, order, kind, payload in sorted(mod.pending, key=lambda e: e[1]):
                obj = self._obj_for_target(mod, target)
                if obj is None:
                    continue
                if kind == "include":
                    child = self.resolve_expr(mod, payload["router"])
                    if child is None:
                        mod.notes.append("%s: include_router(%s) cannot be resolved statically; that router "
                                         "is analysed on its own if it is defined in the tree"
                                         % (payload["source"], ast.unparse(payload["router"])))
                        continue
                    payload = dict(payload, child=child)
                obj.events.append((mod.name, order, kind, payload))
        for obj in self.all_objects():
            # a module runs completely when first imported, so the defining module's own calls
            # come before those other modules make on the same object
            obj.events.sort(key=lambda ev, own=obj.module.name: (ev[0] != own, ev[0], ev[1]))
        for mod in self.modules.values():
            self.notes.extend(mod.notes)

    def expand(self, obj, stack=()):
        """The routes of an app or router in registration order: dicts {path, methods, name, source}."""
        if obj.ident in stack:
            self.notes.append("%s includes itself; the cycle is cut" % obj.ident)
            return []
        out = []
        if obj.base is not None:
            for r in self.expand(obj.base, stack + (obj.ident,)):
                branch = _apply_bindings(r["branch"], obj.bindings)
                if branch is not None:
                    out.append(dict(r, branch=branch))
        for _modname, _order, kind, payload in obj.events:
            if kind == "route":
                out.append({"path": obj.prefix + payload["path"], "methods": payload["methods"],
                            "name": payload["name"], "source": payload["source"], "branch": payload["branch"]})
            else:
                for r in self.expand(payload["child"], stack + (obj.ident,)):
                    out.append(dict(r, path=obj.prefix + payload["prefix"] + r["path"],
                                    branch=payload["branch"] + r["branch"]))
        return out

    def all_objects(self):
        seen = set()
        for mod in self.modules.values():
            for obj in mod.objects.values():
                if id(obj) not in seen:
                    seen.add(id(obj))
                    yield obj


def discover(root, app=None, excludes=None):
    """Routes per app found in a source tree: (list of route dicts with `app`, notes).

    With `app` ("module.path:variable") only that app is analysed; otherwise every FastAPI app
    in the tree is, plus every router no app is shown to include.
    """
    if not os.path.exists(root):
        raise SourceError("path %s does not exist; point path at the service's source tree" % root)
    tree = SourceTree(root, excludes)
    tree.link()
    objs = list(tree.all_objects())
    apps = [o for o in objs if o.kind == "app"]
    if app:
        modname, _sep, var = app.partition(":")
        var = var or "app"
        mod = tree.find_module(modname)
        target = mod.objects.get(var) if mod else None
        if target is None:
            found = ", ".join(sorted("%s:%s" % (o.module.name, o.key) for o in apps)) or "none"
            raise SourceError("app %s not found in %s (FastAPI apps found: %s); set app to module:variable"
                              % (app, root, found))
        selected = [target]
    else:
        selected = [a for a in apps if not a.is_template]
        included = set()

        def mark(o, stack=()):
            if o.base is not None:
                mark(o.base, stack + (o.ident,))
            for ev in o.events:
                if ev[2] == "include" and ev[3]["child"].ident not in stack:
                    included.add(ev[3]["child"].ident)
                    mark(ev[3]["child"], stack + (o.ident,))
        for a in apps:
            mark(a)
        for o in objs:
            if o.kind == "router" and o.ident not in included and not o.is_template:
                # a router nothing includes but which does include others is the top of its tree
                if any(o.ident != p.ident and any(ev[2] == "include" and ev[3]["child"].ident == o.ident
                                                  for ev in p.events) for p in objs):
                    continue
                selected.append(o)
    routes = []
    for o in selected:
        label = "%s:%s" % (o.module.name, o.key) if o.kind == "app" else "router %s:%s" % (o.module.name, o.key)
        for r in tree.expand(o):
            routes.append(dict(r, app=label))
    return routes, tree.notes
