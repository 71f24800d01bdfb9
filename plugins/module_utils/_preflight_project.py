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

from ansible_collections.homeiq.deploy.plugins.module_utils._compose import ComposeCLI, ComposeError, discover_files
# Re-exported: the checks and the tests reach env parsing and the service rules through this module.
from ansible_collections.homeiq.deploy.plugins.module_utils._preflight_env import (  # noqa: F401  pylint: disable=unused-import
    EnvFileError, interpolate, interpolate_tree, literal_defaults, parse_env_text, read_env_file)
from ansible_collections.homeiq.deploy.plugins.module_utils._preflight_services import (  # noqa: F401  pylint: disable=unused-import
    bind_mounts, cpu_limit, dependencies, depends_items_dict, dockerfile_healthcheck, find_cycles, healthcheck_state,
    memory_limit, merge_depends, parse_port_entry, published_ports)

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False

_PROJECT_NAME_BAD = re.compile(r"[^a-z0-9_-]")


# --- the project ----------------------------------------------------------------------------

class ComposeProject:
    """One compose project: where it is run from, its files, env files, profiles and environment.

    Compose's path rule: `project_src` is the folder Compose runs from; `files`, `env_files` and
    `project_directory` given relative are relative to it. The project directory (where the
    default `.env` is read and every relative path inside the files resolves) is
    `project_directory` when given, else the first file's folder, else `project_src`: exactly
    what `docker compose -f domains/core/compose.yml` does from `project_src`.
    """

    def __init__(self, project_src, files=None, env_files=None, profiles=None, project_name=None,
                 environment=None, docker_cli="docker", docker_host=None, project_directory=None, services=None):
        self.project_src = os.path.abspath(project_src)
        self.files = [self._path(f) for f in (files or [])]
        self.env_files = [self._path(f) for f in (env_files or [])]
        self.project_directory = os.path.normpath(self._path(project_directory)) if project_directory else None
        self.profiles = list(profiles or [])
        self.services = list(services or [])  # only these (and what they depend on); empty: every active one
        self.project_name_option = project_name or None
        self.environment = {str(k): "" if v is None else str(v) for k, v in (environment or {}).items()}
        self.docker_cli = docker_cli
        self.docker_host = docker_host or None
        self._env = None
        self._env_errors = None
        self._config = None
        self._raw = None

    def project_dir(self):
        """The project directory Compose uses (see the class docstring)."""
        if self.project_directory:
            return self.project_directory
        if self.files:
            return os.path.dirname(os.path.normpath(self.files[0]))
        return self.project_src

    def show(self, path):
        """A path for messages: relative to project_src inside it, absolute outside it."""
        path = os.path.normpath(path)
        rel = os.path.relpath(path, self.project_src)
        return path if rel.startswith("..") else rel

    def _path(self, p):
        p = os.path.expanduser(str(p))
        return p if os.path.isabs(p) else os.path.join(self.project_src, p)

    # env ---------------------------------------------------------------------------------
    def env_file_paths(self):
        """The env files Compose reads for interpolation: the given ones (--env-file), else the
        project directory's .env when present (Compose reads it only when no --env-file is given)."""
        if self.env_files:
            return list(dict.fromkeys(self.env_files))
        default = os.path.join(self.project_dir(), ".env")
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
        """The collection's Compose v2 CLI client for this project: run from project_src, with
        --project-directory only when the user named one (Compose's own rule otherwise)."""
        kwargs = dict(project_name=self.project_name_option, files=self.files, env_files=self.env_files,
                      profiles=self.profiles, docker_bin=self.docker_cli, environ=self.process_env())
        return ComposeCLI(self.project_src, project_directory=self.project_directory, **kwargs)

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
        """The files given, else Compose's default file (and its override) in the project directory."""
        if self.files:
            return list(self.files)
        return discover_files(self.project_dir())  # with --project-directory, Compose looks for its files there

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
            return self._selected(data.get("services") or {}), "compose", data.get("name") or self.project_name()
        raw = self.raw()
        if raw.error:
            return None, raw.error, None
        return self._selected(raw.active_services()), "files", self.project_name()

    def _selected(self, services):
        """The services named in `services` and those they depend on (all of them when empty)."""
        if not self.services:
            return services
        keep = set()
        todo = [s for s in self.services if s in services]
        while todo:
            name = todo.pop()
            if name in keep:
                continue
            keep.add(name)
            todo.extend(dep for dep, _required, _kind in dependencies(services[name]) if dep in services)
        return {n: s for n, s in services.items() if n in keep}

    def committed_defaults(self, all_defaults=False):
        """[(file, LiteralDefault)] of the compose files' ``${NAME:-literal}`` whose default applies
        with the variables Compose interpolates with (env files, environment); with all_defaults,
        every literal default, whether it applies or not (for the redactor)."""
        out = []
        env = {} if all_defaults else self.env()
        for path in self.raw().files:
            try:
                with open(path, encoding="utf-8-sig") as fh:
                    text = fh.read()
            except (OSError, UnicodeDecodeError):
                continue
            out.extend((path, d) for d in literal_defaults(text, env))
        return out

    def project_name(self, ask_compose=True):
        """The project name; from Compose's model when ask_compose (or when it is already known)."""
        if self.project_name_option:
            return self.project_name_option
        if ask_compose or self._config is not None:
            data, _err = self.config()
            if data is not None and data.get("name"):
                return data["name"]
        raw = self.raw()
        name = raw.name or self.env().get("COMPOSE_PROJECT_NAME") or os.path.basename(self.project_dir())
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
        model.error = f"no compose file in {project.project_dir()} (compose.yaml or docker-compose.yml)"
        return model
    env = project.env()
    model.profiles = project.active_profiles()
    seen = set()

    def load(path, depth, base):
        """Reads one file; `base` is the folder its relative paths resolve from: the project
        directory for the files given, the included file's own folder (or the include's
        project_directory) for an include, as Compose does."""
        path = os.path.abspath(path)
        if path in seen or depth > 10:
            return
        seen.add(path)
        try:
            with open(path, encoding="utf-8-sig") as fh:
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
        for inc in doc.get("include") or []:
            inc_paths = inc.get("path") if isinstance(inc, dict) else inc
            inc_dir = inc.get("project_directory") if isinstance(inc, dict) else None
            if isinstance(inc_paths, str):
                inc_paths = [inc_paths]
            for p in inc_paths or []:
                p = os.path.normpath(os.path.join(base, interpolate(str(p), env)))
                inc_base = os.path.normpath(os.path.join(base, interpolate(str(inc_dir), env))) if inc_dir else os.path.dirname(p)
                load(p, depth + 1, inc_base)
        if doc.get("name") and depth == 0:
            model.name = str(interpolate(str(doc["name"]), env))  # a later file's name wins, as in a merge
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
                merged["depends_on"] = merge_depends(existing["depends_on"], svc["depends_on"])
            merged["_base_dir"] = (existing or {}).get("_base_dir") or base
            merged["_env_file_refs"] = list((existing or {}).get("_env_file_refs", [])) + [(base, r) for r in refs or []]
            model.services[str(name)] = merged

    try:
        for f in files:
            load(f, 0, project.project_dir())
    except ValueError as exc:
        model.error = str(exc)
    return model
