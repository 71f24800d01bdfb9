"""A stack's decisions without an engine: its shape, the order, each project's parameters, failure facts."""
from __future__ import annotations

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _stack as s
from ansible_collections.homeiq.deploy.plugins.module_utils._deploy import DeployError

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64


def entry(name, **kw):
    e = {"name": name, "files": [f"domains/{name}/compose.yml"], "env_files": [".env"], "profiles": None,
         "services": None, "project_directory": None}
    e.update(kw)
    return e


def params(**kw):
    p = {"project_src": "/srv/homeiq", "projects": [entry("core"), entry("pattern"), entry("frontends")],
         "project_name": None, "files": None, "env_files": None, "profiles": None, "services": None,
         "project_directory": None, "state": "present", "restore_images": None, "restore_tag": None,
         "deployment_id": "deploy-20261204-120000", "wait_timeout": 120}
    p.update(kw)
    return p


@pytest.mark.parametrize("kw, message", [
    ({"projects": [entry("core"), dict(entry("pattern"), compose_file="x.yml")]},
     r"^projects\[1\] has unknown key compose_file: a project takes name, files, env_files, profiles, services, project_directory$"),
    ({"projects": [entry("core"), entry("core")]}, "^project core is listed twice in projects"),
    ({"projects": [entry("")]}, r"^projects\[0\] has no name"),
    ({"projects": [entry("  ")]}, r"^projects\[0\] has no name"),
    ({"projects": [{"files": ["a.yml"]}]}, r"^projects\[0\] has no name"),
    ({"projects": ["core"]}, r"^projects\[0\] is not a dict"),
    ({"files": ["compose.yml"]}, "^files cannot be given with projects: set them per project"),
    ({"project_name": "homeiq", "project_directory": "."}, "^project_name, project_directory cannot be given with projects"),
    ({"state": "restored", "restore_images": {"other": {"api": A}}},
     r"^restore_images names project other that is not in projects \(core, pattern, frontends\)"),
    ({"state": "restored", "restore_images": {"x": {"api": A}, "y": {}}}, "^restore_images names projects x, y that are not"),
    ({"state": "restored", "restore_images": {"core": A}}, r"^restore_images\[core\] is not a dict"),
    ({"state": "restored", "restore_images": {"core": {"api": "latest"}}},
     r"^restore_images\[core\]\[api\] = 'latest' is not a full image ID"),
    ({"state": "restored"}, "^state=restored needs restore_images"),
    ({"restore_images": {"core": {"api": A}}}, "^restore_images and restore_tag are only used with state=restored"),
    ({"state": "restored", "restore_images": {"core": {"api": A}}, "restore_tag": "deploy-1"}, "^give restore_images or restore_tag"),
])
def test_bad_stacks_are_one_line(kw, message):
    with pytest.raises(DeployError, match=message) as info:
        s.validate_stack(params(**kw))
    assert "\n" not in str(info.value)


def test_a_good_stack_passes():
    s.validate_stack(params())
    s.validate_stack(params(state="restored", restore_images={"pattern": {"api": A}}))
    s.validate_stack(params(state="restored", restore_tag="deploy-20261204-120000"))


def test_bad_input_stops_before_any_project_is_prepared():
    """Stack.prepare checks the stack's shape before it builds a single Deployment (no engine is asked)."""
    st = s.Stack(params(projects=[entry("core"), entry("core")]))
    with pytest.raises(DeployError, match="listed twice"):
        st.prepare()
    assert st.deployment_id is None


@pytest.mark.parametrize("kw, expected", [
    ({}, ["core", "pattern", "frontends"]),
    ({"state": "absent"}, ["frontends", "pattern", "core"]),
    ({"state": "restored", "restore_images": {"core": {"api": A}, "frontends": {"ui": B}}}, ["frontends", "core"]),
    ({"state": "restored", "restore_images": {"pattern": {"x": A}, "core": {}}}, ["pattern"]),
    ({"state": "restored", "restore_tag": "deploy-1"}, ["frontends", "pattern", "core"]),
])
def test_order(kw, expected):
    assert s.order(params(**kw)) == expected


def test_project_params_take_the_entry_and_the_shared_options():
    p = params(state="restored", restore_images={"pattern": {"api": A}}, keep_deployments=3)
    one = s.project_params(p, entry("pattern", services=["api"], project_directory="domains/pattern"))
    assert one["project_name"] == "pattern"
    assert one["files"] == ["domains/pattern/compose.yml"] and one["env_files"] == [".env"]
    assert one["services"] == ["api"] and one["project_directory"] == "domains/pattern"
    assert one["restore_images"] == {"api": A}
    assert one["keep_deployments"] == 3 and one["deployment_id"] == "deploy-20261204-120000"
    assert "projects" not in one
    assert s.project_params(p, entry("core"))["restore_images"] is None


def _res(changed, prev, cur):
    return {"changed": changed, "services": [{"name": svc} for svc in cur], "actions": [{"what": "recreate", "service": svc} for svc in cur],
            "previous_images": prev, "current_images": cur, "compose_version": "2.26.1",
            "diff": {"before": {"services": {}}, "after": {"services": {}}}}


def test_failure_facts_name_only_the_changed_projects():
    done = [("core", _res(True, {"api": A}, {"api": B})), ("pattern", _res(False, {"ai": A}, {"ai": A}))]
    exc = {"previous_images": {"ui": A}, "current_images": {"ui": C}, "stack_changed": True, "failed_services": ["ui"]}
    facts = s.failure_facts(done, "frontends", exc, ["core", "pattern", "frontends", "extra"])
    assert facts["changed_projects"] == ["core", "frontends"] and facts["stack_changed"] is True
    assert facts["previous_images"] == {"core": {"api": A}, "frontends": {"ui": A}}
    assert facts["current_images"] == {"core": {"api": B}, "frontends": {"ui": C}}
    assert facts["failed_project"] == "frontends" and facts["not_started"] == ["extra"]
    assert facts["failed_services"] == ["ui"]
    assert [p["name"] for p in facts["projects"]] == ["core", "pattern"]
    msg = s.failure_message("frontends", "`docker compose up` failed", facts)
    assert msg == "stack stopped at project frontends: `docker compose up` failed; changed: core, frontends; not started: extra"


def test_failure_facts_leave_out_a_failing_project_that_changed_nothing():
    """A failed build (or a held lock) leaves the failing project's containers as they were."""
    facts = s.failure_facts([], "core", {"previous_images": {"api": A}, "stack_changed": False}, ["core", "pattern"])
    assert facts["changed_projects"] == [] and facts["stack_changed"] is False
    assert facts["previous_images"] == {} and facts["current_images"] == {}
    assert s.failure_message("core", "build failed", facts) == "stack stopped at project core: build failed; changed: none; not started: pattern"


def test_failure_facts_count_a_failing_project_of_unknown_state_as_changed():
    """An engine error after `up` (tagging, pruning) says nothing of the containers: they may be new."""
    facts = s.failure_facts([], "core", {}, ["core", "pattern"])
    assert facts["changed_projects"] == ["core"] and facts["stack_changed"] is True
    assert facts["previous_images"] == {"core": {}}
    assert s.failure_message("core", "engine lost", facts) == "stack stopped at project core: engine lost; changed: core; not started: pattern"


def test_merge_nests_images_and_flattens_services():
    done = [("core", _res(True, {"api": A}, {"api": B})), ("pattern", _res(False, {"ai": C}, {"ai": C}))]
    r = s.merge(done, "deploy-1")
    assert r["changed"] is True and r["deployment_id"] == "deploy-1" and r["compose_version"] == "2.26.1"
    assert r["previous_images"] == {"core": {"api": A}, "pattern": {"ai": C}}
    assert r["current_images"] == {"core": {"api": B}, "pattern": {"ai": C}}
    assert r["services"] == [{"name": "api", "project": "core"}, {"name": "ai", "project": "pattern"}]
    assert [a["project"] for a in r["actions"]] == ["core", "pattern"]
    assert [(p["name"], p["changed"]) for p in r["projects"]] == [("core", True), ("pattern", False)]
    assert set(r["diff"]["before"]["projects"]) == {"core", "pattern"}
    assert s.merge([("core", _res(False, {}, {}))], "d")["changed"] is False
