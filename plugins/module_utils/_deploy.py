# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: plans and carries out one compose deployment.

The plan is made from state that can be queried (a hash of each service's resolved definition, the image IDs of
running containers, build-context fingerprints) rather than from progress text, so check mode
can say what would change without building, pulling or touching a container, and a second run
with the same definition and sources changes nothing.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import tempfile
from datetime import datetime, timezone

from ansible_collections.homeiq.deploy.plugins.module_utils._compose import ComposeCLI, ComposeError
from ansible_collections.homeiq.deploy.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.homeiq.deploy.plugins.module_utils._lock import LockHeld, ProjectLock

DEPLOYMENT_LABEL = "io.homeiq.deployment-id"
CONFIG_LABEL = "io.homeiq.config-hash"
IMAGE_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
DEPLOYMENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# Only tags that sort in deployment order are ever pruned: deploy-YYYYMMDD-HHMMSS[-suffix...][.host]
# (a fleet rollout names each host's deployment <rollout id>.<host>).
PRUNABLE_TAG_RE = re.compile(r"^deploy-\d{8}-\d{6}(-[a-z0-9]+)*(\.[A-Za-z0-9_.-]+)?$")


class DeployError(Exception):
    """A deployment could not go on; `facts` carries what a rollback needs (previous_images...)."""

    def __init__(self, msg, **facts):
        super().__init__(msg)
        self.facts = facts


def new_deployment_id(now=None):
    return (now or datetime.now(timezone.utc)).strftime("deploy-%Y%m%d-%H%M%S")


def default_state_dir():
    if os.geteuid() == 0:
        return "/var/lib/homeiq/compose"
    return os.path.join(os.path.expanduser("~"), ".local", "state", "homeiq", "compose")


def validate_params(p):
    """Checks that need no engine; raises DeployError with one line naming the problem."""
    src = p["project_src"]
    if not os.path.isdir(src):
        raise DeployError(f"project_src {src} does not exist or is not a directory: point it at the folder holding the compose files")
    pdir = p.get("project_directory")
    if pdir and not os.path.isdir(os.path.join(src, pdir)):
        raise DeployError(f"project_directory {os.path.join(src, pdir)} does not exist: give a folder relative to project_src, or leave it "
                          "unset to use the first compose file's folder as `docker compose -f` does")
    for f in p.get("files") or []:
        path = f if os.path.isabs(f) else os.path.join(src, f)
        if not os.path.isfile(path):
            raise DeployError(f"compose file {path} does not exist: fix `files`")
    for e in p.get("env_files") or []:
        path = e if os.path.isabs(e) else os.path.join(src, e)
        if not os.path.isfile(path):
            raise DeployError(f"env file {path} does not exist: fix `env_files` or create it")
    if p.get("deployment_id") and not DEPLOYMENT_ID_RE.match(p["deployment_id"]):
        raise DeployError(f"deployment_id {p['deployment_id']!r} is not usable as an image tag: use letters, digits, '.', '_' and '-'")
    restore = p.get("restore_images") or {}
    tag = p.get("restore_tag")
    if p["state"] == "restored" and not (restore or tag):
        raise DeployError("state=restored needs restore_images (service -> image ID) or restore_tag (a deployment's tag)")
    if restore and tag:
        raise DeployError("give restore_images or restore_tag, not both")
    if (restore or tag) and p["state"] != "restored":
        raise DeployError("restore_images and restore_tag are only used with state=restored")
    if tag and not DEPLOYMENT_ID_RE.match(tag):
        raise DeployError(f"restore_tag {tag!r} is not an image tag: use letters, digits, '.', '_' and '-'")
    if p.get("keep_deployments") is not None and p["keep_deployments"] < 1:
        raise DeployError("keep_deployments must be 1 or more: the running deployment is always kept")
    for svc, image_id in restore.items():
        if not isinstance(image_id, str) or not IMAGE_ID_RE.match(image_id):
            raise DeployError(f"restore_images[{svc}] = {image_id!r} is not a full image ID: give sha256:<64 hex> as compose_deploy returns them")


def _ignored(rel, patterns):
    ignored = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        pat = pat.strip("/")
        parts = rel.split("/")
        hit = any(fnmatch.fnmatch("/".join(parts[:i]), pat) for i in range(1, len(parts) + 1))
        if hit:
            ignored = not neg
    return ignored


def context_fingerprint(build):
    """A hash of what a build reads: context files (minus .dockerignore), Dockerfile, args, target.

    A base image changed under the same name is not seen here; the real run's build sees it.
    """
    h = hashlib.sha256()
    context = build.get("context") or "."
    h.update(json.dumps({k: build.get(k) for k in ("dockerfile", "dockerfile_inline", "args", "target")},
                        sort_keys=True, default=str).encode())
    if not os.path.isdir(context):
        h.update(context.encode())
        return h.hexdigest()
    patterns = []
    ignore_file = os.path.join(context, ".dockerignore")
    if os.path.isfile(ignore_file):
        with open(ignore_file) as fh:
            patterns = [ln.strip() for ln in fh if ln.strip() and not ln.startswith("#")]
    dockerfile = build.get("dockerfile") or "Dockerfile"
    files = []
    for root, dirs, names in os.walk(context):
        dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__"))
        for name in names:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, context).replace(os.sep, "/")
            if rel != dockerfile and _ignored(rel, patterns):
                continue
            files.append((rel, full))
    if not os.path.isabs(dockerfile) and not any(rel == dockerfile for rel, dummy in files):
        files.append((dockerfile, os.path.join(context, dockerfile)))
    elif os.path.isabs(dockerfile):
        files.append((dockerfile, dockerfile))
    for rel, full in sorted(files):
        h.update(rel.encode() + b"\0")
        try:
            with open(full, "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
        except OSError:
            h.update(b"unreadable")
    return h.hexdigest()


def service_hash(svc_cfg):
    """A hash of a service's resolved definition, kept on its container as CONFIG_LABEL.

    Compose's own `config --hash` disagrees with the hash `up` stores when a service uses
    env_file (Compose 2.26), so the plan compares this one instead. Like Compose, it leaves out
    what does not need a new container: the build section, pull policy and replica count.
    """
    cfg = json.loads(json.dumps(svc_cfg, default=str))
    for key in ("build", "pull_policy", "scale"):
        cfg.pop(key, None)
    if isinstance(cfg.get("deploy"), dict):
        cfg["deploy"].pop("replicas", None)
    labels = cfg.get("labels")
    if isinstance(labels, dict):
        for key in (DEPLOYMENT_LABEL, CONFIG_LABEL):
            labels.pop(key, None)
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()


def image_ref(project, service, svc_cfg):
    """The image reference Compose uses for a service: its `image`, else <project>-<service>."""
    ref = svc_cfg.get("image") or f"{project}-{service}"
    last = ref.rsplit("/", 1)[-1]
    if "@" in ref or ":" in last:
        return ref
    return ref + ":latest"


def split_ref(ref):
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repo, tag


def plan_service(service, container, target_image_id, expected_hash, recreate):
    """What `up` would do to one service: create, recreate, start or nothing (None).

    `target_image_id` is None when the image is not known yet (it would be built or pulled).
    """
    if container is None:
        return "create"
    if recreate == "always":
        return "recreate"
    if recreate != "never":
        if target_image_id is None or container.get("image_id") != target_image_id:
            return "recreate"
        if container.get("labels", {}).get(CONFIG_LABEL) != expected_hash:
            return "recreate"
    if container.get("state") != "running":
        return "start"
    return None


class Deployment:
    """One run of compose_deploy. `run()` returns the module result or raises DeployError."""

    def __init__(self, params, check_mode=False, warn=None):
        self.p = params
        self.check_mode = check_mode
        self.warn = warn or (lambda msg: None)
        self.deployment_id = params.get("deployment_id") or new_deployment_id()
        self.actions = []
        self.compose = None
        self.engine = None
        self.project = None
        self.cfg = None
        self.state_dir = params.get("state_dir") or default_state_dir()
        self._tmp = None
        self.version = self.services_cfg = None
        self.selected, self.restore = [], {}

    # ----- observation -------------------------------------------------------------------------
    def observe(self):
        """service -> its container as the engine has it (the first replica)."""
        found = {}
        for row in self.compose.ps():
            svc = row.get("Service")
            if not svc or svc in found:
                continue
            info = self.engine.container(row.get("ID"))
            if info:
                found[svc] = info
        return found

    def _fail(self, msg, before=None, **extra):
        facts = {"deployment_id": self.deployment_id, "project_name": self.project, "actions": self.actions}
        if before is not None:
            facts["previous_images"] = {s: c["image_id"] for s, c in before.items()}
        facts.update(extra)
        return DeployError(msg, **facts)

    # ----- build fingerprints (what check mode knows without building) -------------------------
    def _fp_path(self):
        return os.path.join(self.state_dir, f"{self.project}.builds.json")

    def _load_fps(self):
        try:
            with open(self._fp_path()) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return {}

    def _save_fps(self, fps):
        os.makedirs(self.state_dir, exist_ok=True)
        tmp = self._fp_path() + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(fps, fh, indent=1, sort_keys=True)
        os.replace(tmp, self._fp_path())

    # ----- the override that carries our labels ------------------------------------------------
    def _write_override(self, labels):
        """A compose override that only adds our labels; unchanged services keep their old values so
        their definition, and so their container, stays as it is."""
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="homeiq-compose-")
        path = os.path.join(self._tmp, "homeiq.override.json")
        doc = {"services": {svc: {"labels": value} for svc, value in sorted(labels.items())}}
        with open(path, "w") as fh:
            json.dump(doc, fh)
        self.compose.override_file = path

    def _cleanup(self):
        if self._tmp:
            for name in os.listdir(self._tmp):
                os.unlink(os.path.join(self._tmp, name))
            os.rmdir(self._tmp)
            self._tmp = None

    # ----- the run ----------------------------------------------------------------------------
    def run(self):
        self.prepare()
        return self.execute()

    def prepare(self, tag_optional=False):
        """Every check that changes nothing: input, Compose, the engine, the services and images to restore.

        With `tag_optional`, a `restore_tag` that no image of this project carries leaves `self.restore`
        empty instead of failing (a stack restores only the projects that have the tag).
        """
        p = self.p
        validate_params(p)
        self.compose = ComposeCLI(p["project_src"], p.get("project_name"), p.get("files"), p.get("env_files"),
                                  p.get("profiles"), project_directory=p.get("project_directory"))
        try:
            self.version = self.compose.version()
            self.engine = Engine()
            self.cfg = self.compose.config(with_override=False)
        except (ComposeError, EngineError) as exc:
            raise DeployError(_one_line(exc))
        self.project = self.cfg.get("name") or p.get("project_name")
        services_cfg = self.services_cfg = self.cfg.get("services") or {}
        wanted = list(p.get("services") or [])
        unknown = sorted(set(wanted) - set(services_cfg))
        if unknown:
            raise DeployError("unknown service%s %s: the project defines %s" % (
                "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(sorted(services_cfg))))
        self.selected = wanted or list(services_cfg)
        self.restore = dict(p.get("restore_images") or {})
        if p.get("restore_tag"):
            self.restore = self._images_tagged(p["restore_tag"], services_cfg, wanted, tag_optional)
        if p["state"] == "restored":
            unknown = sorted(set(self.restore) - set(services_cfg))
            if unknown:
                raise DeployError("restore_images names unknown service%s %s: the project defines %s" % (
                    "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(sorted(services_cfg))))
            missing = [f"{s} ({i})" for s, i in sorted(self.restore.items()) if self.engine.image_id(i) != i]
            if missing:
                raise DeployError("cannot restore: the engine has no image %s; nothing was changed. Pick a deployment "
                                  "whose images still exist" % ", ".join(missing))
            self.selected = [s for s in services_cfg if s in self.restore]

    def execute(self):
        """Takes the project's lock and converges (or removes) the project; `prepare()` came first."""
        p = self.p
        result = {"deployment_id": self.deployment_id, "project_name": self.project,
                  "compose_version": ".".join(map(str, self.version))}
        lock = None
        if p.get("lock", True) and not self.check_mode:
            lock = ProjectLock(self.project, lock_dir=p.get("lock_dir"), timeout=p.get("lock_timeout") or 0,
                               stale_after=p.get("lock_stale_after"), deployment_id=self.deployment_id)
            try:
                lock.acquire()
            except LockHeld as exc:
                raise DeployError(str(exc), lock_holder=exc.holder, stack_changed=False)
            if lock.taken_over:
                result["lock_taken_over"] = lock.taken_over
                self.warn("took over the lock of an interrupted run: %s (%s)" % (
                    lock.taken_over.get("deployment_id") or "unknown deployment", lock.taken_over.get("reason")))
        try:
            if p["state"] == "absent":
                result.update(self._absent())
            else:
                result.update(self._converge(self.selected, self.services_cfg, self.restore))
        except (ComposeError, EngineError) as exc:
            raise self._fail(_one_line(exc))
        finally:
            self._cleanup()
            if lock:
                lock.release()
        return result

    def _absent(self):
        before = self.observe()
        changed = bool(before)
        if changed:
            self.actions.append({"what": "remove", "services": sorted(before)})
            if not self.check_mode:
                self.compose.down(timeout=self.p.get("timeout"))
        return {"changed": changed, "services": [], "actions": self.actions,
                "previous_images": {s: c["image_id"] for s, c in before.items()}, "current_images": {},
                "diff": {"before": _view(before), "after": {}}}

    def _retag_running(self, before, refs, services):
        """Compose tags each image as its own build finishes, so a failed build leaves some service
        tags on new, never-deployed images; point them back at what the containers run."""
        for svc in services:
            running = before.get(svc, {}).get("image_id")
            if running and self.engine.image_id(refs[svc]) != running:
                self.engine.tag(running, *split_ref(refs[svc]))

    def _images_tagged(self, tag, services_cfg, wanted, optional=False):
        """service -> image ID of `<service image>:<tag>`; every service must have one (with `optional`,
        none at all is also accepted)."""
        found, missing = {}, []
        for svc in wanted or list(services_cfg):
            repo = split_ref(image_ref(self.project, svc, services_cfg[svc]))[0]
            image_id = self.engine.image_id(f"{repo}:{tag}")
            if image_id:
                found[svc] = image_id
            else:
                missing.append(f"{repo}:{tag}")
        if missing and not (optional and not found):
            raise DeployError("cannot restore tag %s: no image %s on this host; nothing was changed. "
                              "`docker image ls` lists the tags that exist" % (tag, ", ".join(missing)))
        return found

    def _prune(self, refs, keep):
        """Untags the deployment tags beyond the newest `keep` of each service's image. The engine
        deletes an image only when its last tag goes and no container uses it, and the running
        image always keeps the service's own tag."""
        for svc, ref in sorted(refs.items()):
            repo = split_ref(ref)[0]
            tags = sorted((t for t in self.engine.repository_tags(repo) if PRUNABLE_TAG_RE.match(t)), reverse=True)
            for tag in tags[keep:]:
                if not self.check_mode:
                    self.engine.untag(f"{repo}:{tag}")
                self.actions.append({"what": "untag", "service": svc, "image": f"{repo}:{tag}"})

    def _converge(self, selected, services_cfg, restore):
        p = self.p
        before = self.observe()
        previous_images = {s: c["image_id"] for s, c in before.items()}
        refs = {s: image_ref(self.project, s, services_cfg[s]) for s in services_cfg}

        # 1. images: build (or restore), so that the target image ID of each service is known
        targets = {}
        fps = self._load_fps()
        if p["state"] == "restored":
            for svc in selected:
                targets[svc] = restore[svc]
                if self.engine.image_id(refs[svc]) != restore[svc]:
                    self.actions.append({"what": "tag", "service": svc, "image": refs[svc], "image_id": restore[svc]})
                    if not self.check_mode:
                        self.engine.tag(restore[svc], *split_ref(refs[svc]))
        else:
            to_build = []
            for svc in selected:
                if "build" not in services_cfg[svc] or p["build"] == "never":
                    continue
                if p["build"] == "missing" and self.engine.image_id(refs[svc]):
                    continue
                to_build.append(svc)
            new_fps = {svc: context_fingerprint(services_cfg[svc]["build"]) for svc in to_build}
            if to_build and not self.check_mode:
                try:
                    self.compose.build(to_build, timeout=p.get("timeout"))
                except ComposeError as exc:
                    self._retag_running(before, refs, to_build)
                    raise self._fail(f"build failed, nothing was deployed and the running stack is untouched: {exc}",
                                     before, stack_changed=False)
            for svc in selected:
                current = self.engine.image_id(refs[svc])
                if svc in to_build and self.check_mode:
                    known = fps.get(svc) or {}
                    current = known.get("image_id") if known.get("fingerprint") == new_fps[svc] and current == known.get("image_id") else None
                    if current is None:
                        self.actions.append({"what": "build", "service": svc})
                elif svc in to_build:
                    fps[svc] = {"fingerprint": new_fps[svc], "image_id": current}
                targets[svc] = current
            if to_build and not self.check_mode:
                self._save_fps(fps)
            for svc in selected:
                if targets[svc] is None and "build" not in services_cfg[svc] and p["pull"] != "never":
                    self.actions.append({"what": "pull", "service": svc, "image": refs[svc]})

        # 2. plan: which containers `up` would create, recreate or start
        existing_labels = {s: {k: c["labels"][k] for k in (DEPLOYMENT_LABEL, CONFIG_LABEL) if k in c["labels"]}
                           for s, c in before.items() if s in services_cfg}
        existing_labels = {s: v for s, v in existing_labels.items() if v}
        hashes = {s: service_hash(services_cfg[s]) for s in services_cfg}
        recreate = p["recreate"]
        plan = {}
        for svc in selected:
            plan[svc] = plan_service(svc, before.get(svc), targets.get(svc), hashes.get(svc), recreate)
        changing = [s for s in selected if plan[s] in ("create", "recreate")]
        for svc in selected:
            if plan[svc]:
                self.actions.append({"what": plan[svc], "service": svc})
        labels = dict(existing_labels)
        labels.update({s: {DEPLOYMENT_LABEL: self.deployment_id, CONFIG_LABEL: hashes[s]} for s in changing})
        self._write_override(labels)
        changed = any(plan.values()) or any(a["what"] in ("tag", "build", "pull") for a in self.actions)

        # 3. act
        after = before
        if changed and not self.check_mode:
            try:
                self.compose.up(selected, pull="never" if p["state"] == "restored" else p["pull"],
                                recreate=recreate, wait=p["wait"], wait_timeout=p["wait_timeout"],
                                timeout=p.get("timeout"))
            except ComposeError as exc:
                after = self.observe()
                bad = sorted(s for s in selected if s in after and not_ready(after[s]))
                raise self._fail("`docker compose up` failed%s: %s" % (
                    " (not running or unhealthy: %s)" % ", ".join(bad) if bad else "", exc), before,
                    current_images={s: c["image_id"] for s, c in after.items()}, failed_services=bad,
                    stack_changed=after != before)
            after = self.observe()
            for svc in changing:
                ref_repo = split_ref(refs[svc])[0]
                image_id = after.get(svc, {}).get("image_id")
                if image_id:
                    self.engine.tag(image_id, ref_repo, self.deployment_id)
                    self.actions.append({"what": "tag", "service": svc, "image": f"{ref_repo}:{self.deployment_id}",
                                         "image_id": image_id})
        predicted = _predict(before, plan, targets, self.deployment_id) if self.check_mode else after
        if p.get("keep_deployments"):
            self._prune({s: refs[s] for s in selected}, p["keep_deployments"])
            changed = changed or any(a["what"] == "untag" for a in self.actions)

        services = []
        for svc in selected:
            now = predicted.get(svc) or {}
            services.append({
                "name": svc, "image": refs[svc], "image_id": now.get("image_id"),
                "previous_image_id": previous_images.get(svc), "state": now.get("state"),
                "health": now.get("health"), "changed": bool(plan[svc]) or any(
                    a.get("service") == svc and a["what"] in ("build", "pull") for a in self.actions),
            })
        return {
            "changed": changed, "services": services, "actions": self.actions,
            "previous_images": previous_images,
            "current_images": {s: c.get("image_id") for s, c in predicted.items() if c.get("image_id")},
            "diff": {"before": _view(before), "after": _view(predicted)},
        }


def not_ready(container):
    """Whether a container failed `up --wait`: not running, unhealthy, or still starting when Compose
    gave up (2.40 stops at --wait-timeout with the dependency's health still "starting")."""
    return container.get("state") != "running" or container.get("health") in ("unhealthy", "starting")


def _predict(before, plan, targets, deployment_id):
    out = {s: dict(c) for s, c in before.items()}
    for svc, action in plan.items():
        if action in ("create", "recreate"):
            out[svc] = {"image_id": targets.get(svc), "state": "running", "health": None,
                        "labels": {DEPLOYMENT_LABEL: deployment_id}}
        elif action == "start":
            out[svc] = dict(out[svc], state="running")
    return out


def _view(containers):
    return {"services": {s: {"image_id": c.get("image_id"), "state": c.get("state"),
                             "deployment_id": (c.get("labels") or {}).get(DEPLOYMENT_LABEL)}
                         for s, c in sorted(containers.items())}}


def _one_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
