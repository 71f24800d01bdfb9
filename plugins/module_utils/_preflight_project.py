# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The compose project as the preflight checks see it.

Private to the homeiq.deploy collection: not a public API, it may change without notice.

``ComposeProject`` knows the project's files, env files and profiles. It asks Compose itself, through
the collection's Compose CLI client, for the resolved model (``config --format json``) and, when Compose rejects the
project, reads the files directly (includes, profiles and ``${VAR}`` interpolation applied) so
the structural checks can still report every defect at once. The resolved model can hold
secrets: it is never returned or printed, only judged.
"""
from __future__ import annotations

import os
import re

from ansible_collections.homeiq.deploy.plugins.module_utils._compose import ComposeCLI, ComposeError

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False

DEFAULT_COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_PROJECT_NAME_BAD = re.compile(r"[^a-z0-9_-]")


class EnvFileError(Exception):
    """An env file that cannot be read or parsed."""


# --- env files ------------------------------------------------------------------------------

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)\s*(?P<eq>=)?\s*(?P<rest>.*)$")


def parse_env_text(text, lookup=None, source="env file"):
    """Parses dotenv text the way Compose reads env files. Returns {key: value}.

    Unquoted values lose a trailing ` # comment` and surrounding blanks; single quotes are literal;
    double quotes may span lines and understand \\n, \\t, \\" and \\\\; unquoted and double-quoted
    values interpolate ${VAR} from earlier keys, then from `lookup`. A bare `KEY` takes its value
    from `lookup` when set there.
    """
    lookup = lookup or {}
    result = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        lineno = i + 1
        i += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _ENV_LINE.match(raw)
        if not m:
            raise EnvFileError(f"{source} line {lineno}: not KEY=VALUE")
        key = m.group("key")
        if not m.group("eq"):
            if m.group("rest").strip():
                raise EnvFileError(f"{source} line {lineno}: not KEY=VALUE")
            if key in lookup:
                result[key] = lookup[key]
            continue
        rest = m.group("rest")
        env = dict(lookup)
        env.update(result)
        if rest.startswith("'"):
            end = rest.find("'", 1)
            while end < 0 and i < len(lines):
                rest += "\n" + lines[i]
                i += 1
                end = rest.find("'", 1)
            if end < 0:
                raise EnvFileError(f"{source} line {lineno}: unterminated single quote")
            result[key] = rest[1:end]
        elif rest.startswith('"'):
            value, end = _read_double_quoted(rest)
            while end < 0 and i < len(lines):
                rest += "\n" + lines[i]
                i += 1
                value, end = _read_double_quoted(rest)
            if end < 0:
                raise EnvFileError(f"{source} line {lineno}: unterminated double quote")
            result[key] = interpolate(value, env)
        else:
            value = re.split(r"\s+#", rest, maxsplit=1)[0].strip()
            result[key] = interpolate(value, env)
    return result


def _read_double_quoted(text):
    out = []
    j = 1
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}
    while j < len(text):
        c = text[j]
        if c == "\\" and j + 1 < len(text):
            out.append(escapes.get(text[j + 1], "\\" + text[j + 1]))
            j += 2
            continue
        if c == '"':
            return "".join(out), j
        out.append(c)
        j += 1
    return "".join(out), -1


def read_env_file(path, lookup=None):
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise EnvFileError(f"{path} does not exist")
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError(f"{path} cannot be read: {exc.__class__.__name__}")
    return parse_env_text(text, lookup, source=path)


# --- interpolation --------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


def _closing_brace(text, start):
    """Index of the } closing the ${ that ends at start (nested ${...} allowed), or -1."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def interpolate(value, env, missing=None):
    """Compose-style ${VAR} interpolation of one string (defaults may nest). Names of unset
    required variables (${VAR:?msg}) go into the `missing` list when one is given."""
    if not isinstance(value, str) or "$" not in value:
        return value
    out = []
    i = 0
    while i < len(value):
        c = value[i]
        if c != "$" or i + 1 >= len(value):
            out.append(c)
            i += 1
            continue
        nxt = value[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = _closing_brace(value, i + 2)
            m = _BRACED.match(value[i + 2:end]) if end >= 0 else None
            if not m:
                out.append(c)
                i += 1
                continue
            out.append(_substitute(m.group("name"), m.group("op"), m.group("arg") or "", env, missing))
            i = end + 1
            continue
        m = _NAME.match(value, i + 1)
        if m:
            val = env.get(m.group(0))
            out.append(val if val is not None else "")
            i = m.end()
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _substitute(name, op, arg, env, missing):
    val = env.get(name)
    if op is None:
        return val if val is not None else ""
    if op == ":-":
        return val if val else interpolate(arg, env, missing)
    if op == "-":
        return val if val is not None else interpolate(arg, env, missing)
    if op in (":?", "?"):
        if (op == ":?" and not val) or (op == "?" and val is None):
            if missing is not None:
                missing.append(name)
            return ""
        return val
    if op == ":+":
        return interpolate(arg, env, missing) if val else ""
    return interpolate(arg, env, missing) if val is not None else ""


def interpolate_tree(node, env, missing=None):
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env, missing) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, env, missing) for v in node]
    return interpolate(node, env, missing)


# --- the project ----------------------------------------------------------------------------

class ComposeProject:
    """One compose project: where it is, its files, env files, profiles and environment."""

    def __init__(self, project_src, files=None, env_files=None, profiles=None, project_name=None,
                 environment=None, docker_cli="docker", docker_host=None):
        self.project_src = os.path.abspath(project_src)
        self.files = [self._path(f) for f in (files or [])]
        self.env_files = [self._path(f) for f in (env_files or [])]
        self.profiles = list(profiles or [])
        self.project_name_option = project_name or None
        self.environment = {str(k): "" if v is None else str(v) for k, v in (environment or {}).items()}
        self.docker_cli = docker_cli
        self.docker_host = docker_host or None
        self._env = None
        self._env_errors = None
        self._config = None
        self._raw = None

    def show(self, path):
        """A path for messages: relative inside the project, absolute outside it."""
        rel = os.path.relpath(path, self.project_src)
        return path if rel.startswith("..") else rel

    def _path(self, p):
        p = os.path.expanduser(str(p))
        return p if os.path.isabs(p) else os.path.join(self.project_src, p)

    # env ---------------------------------------------------------------------------------
    def env_file_paths(self):
        """The env files Compose reads: the given ones, else the project's .env when present."""
        if self.env_files:
            return list(self.env_files)
        default = os.path.join(self.project_src, ".env")
        return [default] if os.path.exists(default) else []

    def _load_env(self):
        if self._env is not None:
            return
        process_env = dict(os.environ)
        process_env.update(self.environment)
        merged = {}
        errors = []
        files_env = {}
        for path in self.env_file_paths():
            lookup = dict(process_env)
            lookup.update(files_env)
            try:
                files_env.update(read_env_file(path, lookup))
            except EnvFileError as exc:
                errors.append(str(exc))
        merged.update(files_env)
        merged.update(process_env)  # the shell environment wins over env files, as in Compose
        self._files_env = files_env
        self._env = merged
        self._env_errors = errors

    def env(self):
        """Every variable Compose would see: env files, then the environment (which wins)."""
        self._load_env()
        return self._env

    def files_env(self):
        """Only what the env files (and the `environment` option) define."""
        self._load_env()
        out = dict(self._files_env)
        out.update(self.environment)
        return out

    def service_env(self):
        """What the services' own env_file entries define (existing files only), merged."""
        if getattr(self, "_service_env", None) is None:
            merged = {}
            raw = self.raw()
            if not raw.error:
                seen = set()
                for _service, path, _required in raw.env_file_refs():
                    if path in seen or not os.path.isfile(path):
                        continue
                    seen.add(path)
                    try:
                        merged.update(read_env_file(path, self.env()))
                    except EnvFileError:
                        continue
            self._service_env = merged
        return self._service_env

    def deploy_env(self):
        """Every variable the deployment defines: the services' env files, the project's env
        files and the environment (later ones win)."""
        out = dict(self.service_env())
        out.update(self.env())
        return out

    def defined_env(self):
        """What the project itself defines (services' env files, env files, `environment`),
        without the unrelated variables of the process environment."""
        out = dict(self.service_env())
        out.update(self.files_env())
        return out

    def env_errors(self):
        self._load_env()
        return list(self._env_errors)

    def active_profiles(self):
        if self.profiles:
            return list(self.profiles)
        env_profiles = self.env().get("COMPOSE_PROFILES", "")
        return [p.strip() for p in env_profiles.split(",") if p.strip()]

    # compose CLI -------------------------------------------------------------------------
    def process_env(self):
        env = dict(os.environ)
        env.update(self.environment)
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        return env

    def compose_cli(self):
        """The collection's Compose v2 CLI client for this project."""
        return ComposeCLI(self.project_src, project_name=self.project_name_option, files=self.files,
                          env_files=self.env_files, profiles=self.profiles, docker_bin=self.docker_cli,
                          environ=self.process_env())

    def config(self):
        """(model, None) from `docker compose config --format json`, or (None, Compose's message)."""
        if self._config is None:
            try:
                self._config = (self.compose_cli().config(), None)
            except ComposeError as exc:
                self._config = (None, str(exc))
        return self._config

    # the files themselves -----------------------------------------------------------------
    def compose_files(self):
        if self.files:
            return list(self.files)
        for name in DEFAULT_COMPOSE_FILES:
            path = os.path.join(self.project_src, name)
            if os.path.exists(path):
                stem, ext = os.path.splitext(name)
                found = [path]
                for override in (f"{stem}.override{ext}", f"{stem}.override.yaml", f"{stem}.override.yml"):
                    opath = os.path.join(self.project_src, override)
                    if os.path.exists(opath) and opath not in found:
                        found.append(opath)
                        break
                return found
        return []

    def raw(self):
        """The project read from its files: RawModel (services merged, interpolated)."""
        if self._raw is None:
            self._raw = _load_raw(self)
        return self._raw

    def model(self):
        """(services, source, name) from Compose when it accepts the project, else from the files.

        services: {name: definition} of the active services; source: 'compose' or 'files';
        all_services (in RawModel) also knows inactive ones. Returns (None, reason, None) when
        neither can be read.
        """
        data, _err = self.config()
        if data is not None:
            return data.get("services") or {}, "compose", data.get("name") or self.project_name()
        raw = self.raw()
        if raw.error:
            return None, raw.error, None
        return raw.active_services(), "files", self.project_name()

    def project_name(self, ask_compose=True):
        """The project name; from Compose's model when ask_compose (or when it is already known)."""
        if self.project_name_option:
            return self.project_name_option
        if ask_compose or self._config is not None:
            data, _err = self.config()
            if data is not None and data.get("name"):
                return data["name"]
        raw = self.raw()
        name = raw.name or self.env().get("COMPOSE_PROJECT_NAME") or os.path.basename(self.project_src)
        return _PROJECT_NAME_BAD.sub("", name.lower())


class RawModel:
    def __init__(self):
        self.services = {}
        self.files = []
        self.name = None
        self.error = None
        self.profiles = []
        self.missing_required = []

    def is_active(self, svc):
        profiles = (self.services.get(svc) or {}).get("profiles") or []
        return not profiles or bool(set(profiles) & set(self.profiles)) or "*" in self.profiles

    def active_services(self):
        return {n: s for n, s in self.services.items() if self.is_active(n)}

    def env_file_refs(self):
        """[(service, path, required)] of service-level env_file entries of active services."""
        out = []
        for name, svc in self.active_services().items():
            for base_dir, entry in svc.get("_env_file_refs", []):
                if isinstance(entry, dict):
                    path = entry.get("path")
                    required = entry.get("required", True)
                else:
                    path, required = entry, True
                if not path:
                    continue
                path = os.path.expanduser(str(path))
                if not os.path.isabs(path):
                    path = os.path.normpath(os.path.join(base_dir, path))
                out.append((name, path, bool(required) and str(required).lower() != "false"))
        return out


def _load_raw(project):
    model = RawModel()
    if not HAS_YAML:
        model.error = "PyYAML is not installed"
        return model
    files = project.compose_files()
    if not files:
        model.error = f"no compose file in {project.project_src} (compose.yaml or docker-compose.yml)"
        return model
    env = project.env()
    model.profiles = project.active_profiles()
    seen = set()

    def load(path, depth):
        path = os.path.abspath(path)
        if path in seen or depth > 10:
            return
        seen.add(path)
        try:
            with open(path, encoding="utf-8") as fh:
                doc = yaml.safe_load(fh) or {}
        except FileNotFoundError:
            raise ValueError(f"{path} does not exist")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} cannot be read: {exc.__class__.__name__}")
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ValueError(f"{path}{where} is not valid YAML")
        if not isinstance(doc, dict):
            raise ValueError(f"{path} is not a mapping of compose keys")
        model.files.append(path)
        base = os.path.dirname(path)
        for inc in doc.get("include") or []:
            inc_paths = inc.get("path") if isinstance(inc, dict) else inc
            if isinstance(inc_paths, str):
                inc_paths = [inc_paths]
            for p in inc_paths or []:
                p = interpolate(str(p), env)
                load(p if os.path.isabs(p) else os.path.join(base, p), depth + 1)
        if doc.get("name") and not model.name:
            model.name = str(interpolate(str(doc["name"]), env))
        services = doc.get("services") or {}
        if not isinstance(services, dict):
            raise ValueError(f"{path}: services is not a mapping")
        for name, svc in services.items():
            svc = svc if isinstance(svc, dict) else {}
            svc = interpolate_tree(svc, env, model.missing_required)
            refs = svc.get("env_file")
            if isinstance(refs, (str, dict)):
                refs = [refs]
            existing = model.services.get(name)
            merged = dict(existing) if existing else {}
            merged.update(svc)
            if existing and "depends_on" in existing and "depends_on" in svc:
                merged["depends_on"] = _merge_depends(existing["depends_on"], svc["depends_on"])
            merged["_env_file_refs"] = list((existing or {}).get("_env_file_refs", [])) + [(base, r) for r in refs or []]
            model.services[str(name)] = merged

    try:
        for f in files:
            load(f, 0)
    except ValueError as exc:
        model.error = str(exc)
    return model


def _merge_depends(a, b):
    out = dict(depends_items_dict(a))
    out.update(depends_items_dict(b))
    return out


def depends_items_dict(dep):
    if isinstance(dep, dict):
        return {str(k): (v if isinstance(v, dict) else {}) for k, v in dep.items()}
    if isinstance(dep, list):
        return {str(k): {} for k in dep}
    return {}


# --- judging services -----------------------------------------------------------------------

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
