# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: a stack, several compose projects deployed in a fixed order.

Each project is one `Deployment` (_deploy.py). The stack decides the order (list order to deploy,
reverse order to restore or remove), checks every project before any is touched, stops at the first
failure, and reports nested by project: `{project: {service: image_id}}`. A failure names the projects
the run changed, so that a rollback restores those and leaves the others alone.
"""
from __future__ import annotations

from ansible_collections.homeiq.deploy.plugins.module_utils._deploy import IMAGE_ID_RE, DeployError, Deployment, validate_params

# The options of one project of a stack, shared by every module that takes `projects`
# (compose_deploy, preflight_check) so that their argument specs cannot drift apart.
STACK_PROJECT_SPEC = dict(
    name=dict(type="str", required=True),
    files=dict(type="list", elements="path"),
    env_files=dict(type="list", elements="path"),
    profiles=dict(type="list", elements="str"),
    services=dict(type="list", elements="str"),
    project_directory=dict(type="str"),
)
ENTRY_KEYS = tuple(STACK_PROJECT_SPEC)
# top-level options that describe one project, and so cannot be given beside `projects`
SINGLE_PROJECT_OPTIONS = ("project_name", "files", "env_files", "profiles", "services", "project_directory")


def _names(items):
    return ", ".join(items) if items else "none"


def validate_entries(projects):
    """The stack's own list: dicts with known keys, a non-empty unique name each."""
    if not isinstance(projects, list) or not projects:
        raise DeployError("projects must be a non-empty list of {name, files, env_files, profiles, services, project_directory}")
    seen = set()
    for i, entry in enumerate(projects):
        if not isinstance(entry, dict):
            raise DeployError(f"projects[{i}] is not a dict: give each project as {{name: ..., files: [...]}}")
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown:
            raise DeployError("projects[%d] has unknown key%s %s: a project takes %s" % (
                i, "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(ENTRY_KEYS)))
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise DeployError(f"projects[{i}] has no name: give each project its compose project name")
        if name in seen:
            raise DeployError(f"project {name} is listed twice in projects: each compose project may appear once")
        seen.add(name)


def validate_restore(params, names):
    """`restore_images` of a stack is {project: {service: image_id}}, naming only projects of the stack."""
    restore = params.get("restore_images") or {}
    tag = params.get("restore_tag")
    if params["state"] == "restored" and not (restore or tag):
        raise DeployError("state=restored needs restore_images ({project: {service: image ID}}) or restore_tag")
    if (restore or tag) and params["state"] != "restored":
        raise DeployError("restore_images and restore_tag are only used with state=restored")
    if restore and tag:
        raise DeployError("give restore_images or restore_tag, not both")
    outside = sorted(set(restore) - set(names))
    if outside:
        raise DeployError("restore_images names project%s %s that %s not in projects (%s): restore only projects of the stack" % (
            "s" if len(outside) > 1 else "", ", ".join(outside), "are" if len(outside) > 1 else "is", ", ".join(names)))
    for project, images in restore.items():
        if not isinstance(images, dict):
            raise DeployError(f"restore_images[{project}] is not a dict: with projects, give {{project: {{service: image ID}}}}")
        for svc, image_id in images.items():
            if not isinstance(image_id, str) or not IMAGE_ID_RE.match(image_id):
                raise DeployError(f"restore_images[{project}][{svc}] = {image_id!r} is not a full image ID: "
                                  "give sha256:<64 hex> as compose_deploy returns them")


def validate_stack(params):
    """Checks of the stack's shape that need no engine; raises DeployError with one line."""
    projects = params.get("projects")
    validate_entries(projects)
    given = [k for k in SINGLE_PROJECT_OPTIONS if params.get(k)]
    if given:
        raise DeployError("%s cannot be given with projects: set them per project in the projects list" % ", ".join(given))
    validate_restore(params, [e["name"] for e in projects])


def order(params):
    """The project names in the order this run handles them.

    present: list order. restored: reverse list order, only the projects in restore_images (all of them
    with restore_tag; those without the tag are dropped later). absent: reverse list order.
    """
    names = [e["name"] for e in params["projects"]]
    if params["state"] == "present":
        return names
    names.reverse()
    if params["state"] == "restored" and not params.get("restore_tag"):
        restore = params.get("restore_images") or {}
        names = [n for n in names if restore.get(n)]
    return names


def project_params(params, entry):
    """The parameters of one project's Deployment: the stack's shared options plus the entry's own."""
    p = {k: v for k, v in params.items() if k not in ("projects", "restore_images")}
    p.update({k: entry.get(k) for k in ENTRY_KEYS if k != "name"})
    p["project_name"] = entry["name"]
    restore = (params.get("restore_images") or {}).get(entry["name"])
    p["restore_images"] = dict(restore) if restore else None
    return p


def failure_facts(done, failing, exc_facts, names):
    """What a failed stack leaves for a rollback: the projects it changed, in deploy order, and their images.

    `done` is [(name, result)] of the projects that finished, `failing` the name of the one that failed
    and `exc_facts` its DeployError facts, `names` the run's order.
    """
    changed = [(n, r) for n, r in done if r.get("changed")]
    facts = {"failed_project": failing, "previous_images": {}, "current_images": {}}
    for name, res in changed:
        facts["previous_images"][name] = res.get("previous_images") or {}
        facts["current_images"][name] = res.get("current_images") or {}
    if exc_facts.get("stack_changed", True):  # unknown (an engine error after `up`) counts as changed
        changed.append((failing, exc_facts))
        facts["previous_images"][failing] = exc_facts.get("previous_images") or {}
        facts["current_images"][failing] = exc_facts.get("current_images") or {}
    facts["changed_projects"] = [n for n, dummy in changed]
    facts["stack_changed"] = bool(changed)
    facts["not_started"] = names[names.index(failing) + 1:]
    facts["projects"] = [project_summary(n, r) for n, r in done]
    for key in ("failed_services", "lock_holder"):
        if key in exc_facts:
            facts[key] = exc_facts[key]
    return facts


def untouched(failing, names):
    """The failure facts of a run stopped before any project was touched (bad input)."""
    return {"failed_project": failing, "changed_projects": [], "stack_changed": False, "previous_images": {},
            "current_images": {}, "not_started": list(names), "projects": []}


def failure_message(failing, msg, facts):
    """One line: where the stack stopped, why, what it had changed and what it did not start."""
    return "stack stopped at project %s: %s; changed: %s; not started: %s" % (
        failing, msg, _names(facts["changed_projects"]), _names(facts["not_started"]))


def project_summary(name, res):
    out = {"name": name}
    for key in ("changed", "services", "actions", "previous_images", "current_images", "lock_taken_over"):
        if key in res:
            out[key] = res[key]
    return out


def merge(done, deployment_id):
    """The stack's result from [(name, result)] in run order: nested images, flat services and actions."""
    result = {"changed": any(r.get("changed") for dummy, r in done), "deployment_id": deployment_id,
              "projects": [project_summary(n, r) for n, r in done], "services": [], "actions": [],
              "previous_images": {}, "current_images": {}, "diff": {"before": {"projects": {}}, "after": {"projects": {}}}}
    for name, res in done:
        result["services"] += [dict(s, project=name) for s in res.get("services") or []]
        result["actions"] += [dict(a, project=name) for a in res.get("actions") or []]
        result["previous_images"][name] = res.get("previous_images") or {}
        result["current_images"][name] = res.get("current_images") or {}
        for side in ("before", "after"):
            result["diff"][side]["projects"][name] = (res.get("diff") or {}).get(side) or {}
        if res.get("compose_version"):
            result["compose_version"] = res["compose_version"]
    return result


class Stack:
    """One run of compose_deploy with `projects`. `run()` returns the module result or raises DeployError."""

    def __init__(self, params, check_mode=False, warn=None):
        self.p = params
        self.check_mode = check_mode
        self.warn = warn or (lambda msg: None)
        self.deployment_id = None

    def _deployment(self, entry):
        name = entry["name"]
        warn = self.warn
        dep = Deployment(project_params(self.p, entry), check_mode=self.check_mode,
                         warn=lambda msg: warn(f"project {name}: {msg}"))
        if self.deployment_id:
            dep.deployment_id = self.deployment_id
        self.deployment_id = dep.deployment_id
        return dep

    def prepare(self):
        """A Deployment per project of this run, each checked; nothing is touched before all pass."""
        try:
            validate_stack(self.p)
        except DeployError as exc:
            raise DeployError(str(exc), **untouched(None, []))
        entries = {e["name"]: e for e in self.p["projects"]}
        names = order(self.p)
        tag = self.p.get("restore_tag") if self.p["state"] == "restored" else None
        for name in names:                 # the checks without Compose or the engine, for every project first
            try:
                validate_params(project_params(self.p, entries[name]))
            except DeployError as exc:
                raise DeployError(f"project {name}: {exc}", **untouched(name, names))
        deployments = []
        for name in names:
            dep = self._deployment(entries[name])
            try:
                dep.prepare(tag_optional=bool(tag))
            except DeployError as exc:
                raise DeployError(f"project {name}: {exc}", **untouched(name, names))
            if tag and not dep.restore:
                continue
            deployments.append((name, dep))
        if tag and not deployments:
            raise DeployError(f"cannot restore tag {tag}: no project of the stack has an image tagged {tag}; nothing was changed. "
                              "`docker image ls` lists the tags that exist")
        return deployments

    def run(self):
        deployments = self.prepare()
        names = [n for n, dummy in deployments]
        done = []
        for name, dep in deployments:
            try:
                done.append((name, dep.execute()))
            except DeployError as exc:
                facts = failure_facts(done, name, exc.facts, names)
                facts["deployment_id"] = self.deployment_id
                raise DeployError(failure_message(name, str(exc), facts), **facts)
        return merge(done, self.deployment_id)
