# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: the decisions the roles make about a stack of compose projects.

Not a public API: names may change between releases. Pure Python, no Ansible and no engine, so the
unit tests call it directly; the filters of plugins/filter/stack.py are thin wrappers over it.

A deployment is either one compose project (images ``{service: image_id}``) or a stack of projects
deployed in order (the deploy role's ``deploy_projects``; images ``{project: {service: image_id}}``).
"""
from __future__ import annotations

# Keys of one project of a stack, as compose_deploy's ``projects`` option takes them.
PROJECT_KEYS = ("name", "files", "env_files", "profiles", "services", "project_directory")
_LIST_KEYS = ("files", "env_files", "profiles", "services")


class StackError(Exception):
    """Bad input; the message is one line naming the thing and what to do."""


def _names(items):
    return ", ".join(str(i) for i in items) or "none"


def _text_list(value, what):
    if value is None or value == "":
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise StackError("%s must be a list of text, not %r" % (what, value))
    out = []
    for item in value:
        if not isinstance(item, str) or not item:
            raise StackError("%s has an empty or non-text entry %r: give each as text" % (what, item))
        out.append(item)
    return out


def normalize_projects(projects):
    """The stack as compose_deploy takes it: each project's non-empty keys, checked; [] for one project."""
    if projects is None or projects == "":
        return []
    if not isinstance(projects, (list, tuple)):
        raise StackError("deploy_projects must be a list of projects ({name, files, env_files, ...}), not %r" % (projects,))
    out, seen = [], set()
    for index, project in enumerate(projects):
        if not isinstance(project, dict):
            raise StackError("deploy_projects[%d] is %r, not a project: give a mapping with at least a name" % (index, project))
        unknown = sorted(str(k) for k in project if k not in PROJECT_KEYS)
        if unknown:
            raise StackError("deploy_projects[%d] has unknown keys %s: a project takes %s"
                             % (index, _names(unknown), _names(PROJECT_KEYS)))
        name = project.get("name")
        if not isinstance(name, str) or not name:
            raise StackError("deploy_projects[%d] has no name: give each project its compose project name" % index)
        if name in seen:
            raise StackError("deploy_projects names the project %s twice: each compose project appears once in a stack" % name)
        seen.add(name)
        clean = {"name": name}
        for key in _LIST_KEYS:
            values = _text_list(project.get(key), "deploy_projects[%d] (%s) %s" % (index, name, key))
            if values:
                clean[key] = values
        directory = project.get("project_directory")
        if directory not in (None, ""):
            if not isinstance(directory, str):
                raise StackError("deploy_projects[%d] (%s) project_directory must be text, not %r" % (index, name, directory))
            clean["project_directory"] = directory
        out.append(clean)
    return out


def compose_target(projects=None, project_name="", files=None, env_files=None, profiles=None, services=None,
                   project_directory=""):
    """The options of compose_deploy that name what to deploy.

    A stack: ``{"projects": [...]}`` only (the single-project options are not passed). One project:
    only the options given (empty ones are left to compose_deploy's defaults)."""
    stack = normalize_projects(projects)
    if stack:
        return {"projects": stack}
    target = {}
    if project_name:
        target["project_name"] = str(project_name)
    for key, value in (("files", files), ("env_files", env_files), ("profiles", profiles), ("services", services)):
        values = _text_list(value, "deploy_" + key)
        if values:
            target[key] = values
    if project_directory:
        target["project_directory"] = str(project_directory)
    return target


def is_stack_images(images):
    """True when images are nested by project (a stack), False for one project's (or no) images."""
    if not images:
        return False
    if not isinstance(images, dict):
        raise StackError("images must be a mapping, not %r" % (images,))
    nested = [v for v in images.values() if isinstance(v, dict)]
    if nested and len(nested) != len(images):
        raise StackError("images mixes projects with services: give service -> image ID for one project, "
                         "or project -> {service: image ID} for a stack")
    return bool(nested)


def services_count(images):
    """Number of services of a deployment's images, one project's or a stack's."""
    if not images:
        return 0
    if is_stack_images(images):
        return sum(len(services) for services in images.values())
    return len(images)


def _stack_services(*images_maps):
    """project -> set of services over several images maps (all of one shape); '' is the single project."""
    found = {}
    for images in images_maps:
        if not images:
            continue
        if is_stack_images(images):
            for project, services in images.items():
                found.setdefault(project, [])
                found[project].extend(s for s in services if s not in found[project])
        else:
            found.setdefault("", [])
            found[""].extend(s for s in images if s not in found[""])
    return found


def changed_projects(result):
    """Names of the projects a stack's compose_deploy result changed, in deploy order; [] for one project."""
    result = result or {}
    if "changed_projects" in result:
        return list(result["changed_projects"] or [])
    return [p.get("name") for p in result.get("projects") or [] if p.get("changed")]


def replaced_images(result):
    """The images a deployment replaced: what its rollback restores.

    One project: compose_deploy's ``previous_images`` as they are. A stack: only the projects the
    deployment changed (a failed stack's result is already restricted so by compose_deploy), so that a
    rollback touches nothing else."""
    result = result or {}
    previous = result.get("previous_images") or {}
    if not result.get("projects") and "changed_projects" not in result:
        return dict(previous)
    changed = changed_projects(result)
    # A changed project that had no containers before (its first deployment) has nothing to go back to.
    return {name: dict(previous[name]) for name in changed if previous.get(name)}


def failing_services(checks, current_images=None, previous_images=None, project=""):
    """The failing checks that are services of the deployment, as [{project, service}] in the checks' order.

    A check is a service name, ``project/service``, or a mapping ``{project, service}`` (or
    ``{project, name}``). A bare service name is looked up in ``project`` when it is given (the project
    where a stack's deploy stopped, whose failing services compose_deploy names), else in every project.
    Checks that name no deployed service (an HTTP route, a browser page) are left out. ``project`` is ''
    in the entries of a single project."""
    known = _stack_services(current_images, previous_images)
    where = [project] if project else list(known)
    out = []

    def add(name, service):
        entry = {"project": name, "service": service}
        if service in known.get(name, ()) and entry not in out:
            out.append(entry)

    for check in checks or []:
        if isinstance(check, dict):
            service = check.get("service") or check.get("name")
            project_of = check.get("project") or ""
            if isinstance(service, str) and service:
                if project_of:
                    add(project_of, service)
                else:
                    for name in where:
                        add(name, service)
            continue
        if not isinstance(check, str) or not check:
            continue
        project_of, sep, service = check.partition("/")
        if sep and project_of in known:
            add(project_of, service)
            continue
        for name in where:
            add(name, check)
    return out


def logs_commands(failing, target, tail=200, prefix=""):
    """One ``docker compose logs`` command per failing service, read from that service's own project.

    ``target`` is what compose_target returns. The commands run from project_src (the caller's
    ``chdir``), as compose_deploy does: files and env files relative to it, ``--project-directory``
    only when one is given. Returns [{project, service, label, argv, path}], where path is
    ``<prefix>-[<project>-]<service>.log``."""
    target = target or {}
    stack = {p["name"]: p for p in target.get("projects", [])}
    out = []
    for entry in failing or []:
        if isinstance(entry, str):
            entry = {"project": "", "service": entry}
        project, service = entry.get("project") or "", entry["service"]
        if stack:
            if project not in stack:
                raise StackError("service %s is of project %r, which is not in deploy_projects (%s)"
                                 % (service, project, _names(stack)))
            spec = stack[project]
            argv = ["docker", "compose", "--project-name", project]
        else:
            spec = target
            argv = ["docker", "compose"] + (["--project-name", spec["project_name"]] if spec.get("project_name") else [])
        for path in spec.get("files", []):
            argv += ["--file", path]
        for path in spec.get("env_files", []):
            argv += ["--env-file", path]
        for profile in spec.get("profiles", []):
            argv += ["--profile", profile]
        if spec.get("project_directory"):
            argv += ["--project-directory", spec["project_directory"]]
        argv += ["logs", "--no-color", "--timestamps", "--tail", str(tail), service]
        stem = (project + "-" + service) if project else service
        out.append({"project": project, "service": service, "label": (project + "/" + service) if project else service,
                    "argv": argv, "path": "%s-%s.log" % (prefix, stem) if prefix else stem + ".log"})
    return out


def _service_line(service):
    image_id = service.get("image_id")
    return "%-24s %-19s %-9s %-9s %s" % (
        service.get("name"), image_id[7:19] if image_id else "to be built", service.get("state") or "-",
        service.get("health") or "-", "changed" if service.get("changed") else "unchanged")


def summary_lines(result, name="", check_mode=False):
    """The deploy role's summary: a headline, then one line per service (grouped by project for a stack).

    The headline keeps the form ``<name>: N services, C changed by deployment <id>`` (or ``nothing to
    change``) that the pipeline's own summary reads."""
    result = result or {}
    services = result.get("services") or []
    changed = len([s for s in services if s.get("changed")])
    predicted = " (check mode: predicted)" if check_mode else ""
    outcome = ("%d changed by deployment %s" % (changed, result.get("deployment_id"))) if result.get("changed") else "nothing to change"
    projects = result.get("projects")
    if not projects:
        return ["%s: %d services, %s%s" % (result.get("project_name") or name, len(services), outcome, predicted)] + [
            _service_line(s) for s in services]
    order = [p.get("name") for p in projects]
    order += [s.get("project") for s in services if s.get("project") not in order]
    changed_projects = [p.get("name") for p in projects if p.get("changed")]
    headline = "%s: %d projects, %d services, %s%s%s" % (
        name or result.get("project_name") or "stack", len(order), len(services), outcome,
        (" (projects changed: %s)" % ", ".join(changed_projects)) if result.get("changed") and changed_projects else "",
        predicted)
    lines = [headline]
    for project in order:
        members = [s for s in services if s.get("project") == project]
        flag = "changed" if project in changed_projects else "unchanged"
        lines.append("[%s] %d services, %s" % (project, len(members), flag))
        lines.extend("  " + _service_line(s) for s in members)
    return lines


def restore_plan(images=None, target=None):
    """What a rollback to ``images`` touches, checked against what it runs with.

    ``target`` is what compose_target returns for the deploy variables. Returns {stack, projects,
    services, images, target, error}: ``projects`` the names of the projects restored, in stack order
    (compose_deploy restores them in reverse); ``images`` without projects that had none; ``target``
    the compose_deploy options naming what to restore (a stack restricted to those projects; all of
    them for a rollback by tag); ``error`` one line when the images do not fit the stack, else ''."""
    target = dict(target or {})
    specs = target.get("projects") or []
    stack = [p["name"] for p in specs]
    plan = {"stack": bool(stack), "projects": list(stack), "services": 0, "images": images or {}, "target": target, "error": ""}
    if not images:
        return plan
    try:
        nested = is_stack_images(images)
    except StackError as exc:
        plan["error"] = str(exc)
        return plan
    if nested and not stack:
        plan["error"] = ("the images are a stack's, nested by compose project (%s), but deploy_projects is empty: "
                         "set deploy_projects to the stack they were deployed with" % _names(images))
        return plan
    if not nested and stack:
        plan["error"] = ("the images are one compose project's (services %s), but deploy_projects names a stack (%s): "
                         "roll back with the single project's settings they were deployed with" % (_names(images), _names(stack)))
        return plan
    if not nested:
        plan["services"] = len(images)
        return plan
    unknown = [p for p in images if p not in stack]
    if unknown:
        plan["error"] = ("the images name the compose project %s, which is not in deploy_projects (%s): "
                         "roll back with the deploy_projects they were deployed with" % (_names(unknown), _names(stack)))
        return plan
    plan["projects"] = [p for p in stack if images.get(p)]
    if not plan["projects"]:
        plan["error"] = "the images of the projects %s name no service: there is nothing to restore" % _names(images)
        return plan
    plan["images"] = {p: dict(images[p]) for p in plan["projects"]}
    plan["services"] = services_count(plan["images"])
    plan["target"] = dict(target, projects=[spec for spec in specs if spec["name"] in plan["projects"]])
    return plan
