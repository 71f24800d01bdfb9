"""The stack filters (plugins/filter/stack.py over module_utils/_stack_plan.py): what the deploy, pipeline
and rollback roles decide for one compose project or a stack of them."""
from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.homeiq.deploy.plugins.filter.stack import FilterModule
from ansible_collections.homeiq.deploy.plugins.module_utils import _stack_plan as S

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64
F = FilterModule().filters()

STACK = [
    {"name": "demo-core-platform", "files": ["domains/core-platform/compose.yml"], "env_files": [".env"], "profiles": ["production"]},
    {"name": "demo-pattern-analysis", "files": ["domains/pattern-analysis/compose.yml"], "env_files": [".env"],
     "profiles": ["production"], "project_directory": "domains/pattern-analysis"},
    {"name": "demo-frontends", "files": ["domains/frontends/compose.yml"], "env_files": [], "services": []},
]
STACK_IMAGES = {"demo-core-platform": {"influxdb": A, "data-api": B},
                "demo-pattern-analysis": {"ai-pattern-service": C, "ai-automation-service": A},
                "demo-frontends": {"health-dashboard": B}}


def test_every_filter_is_published_under_its_documented_name():
    assert sorted(F) == ["compose_logs_commands", "compose_target", "deploy_summary", "stack_changed_projects",
                         "stack_failing_services", "stack_images_nested", "stack_replaced_images", "stack_restore_plan",
                         "stack_services_count"]


# -- compose_target -----------------------------------------------------------------------------

def test_a_single_project_passes_only_what_is_given():
    assert F["compose_target"]([], project_name="homeiq", files=["compose.yaml"], env_files=[], profiles=[],
                               services=["api"], project_directory="") == {
        "project_name": "homeiq", "files": ["compose.yaml"], "services": ["api"]}
    assert F["compose_target"]([]) == {}
    assert F["compose_target"]([], project_directory="app") == {"project_directory": "app"}


def test_a_stack_passes_projects_and_none_of_the_single_project_options():
    target = F["compose_target"](STACK, project_name="homeiq", files=["compose.yaml"], services=["api"])
    assert list(target) == ["projects"]
    assert [p["name"] for p in target["projects"]] == ["demo-core-platform", "demo-pattern-analysis", "demo-frontends"]
    # empty keys are dropped, the others kept as given
    assert target["projects"][2] == {"name": "demo-frontends", "files": ["domains/frontends/compose.yml"]}
    assert target["projects"][1]["project_directory"] == "domains/pattern-analysis"


@pytest.mark.parametrize("projects, message", [
    ([{"files": ["a.yml"]}], r"deploy_projects\[0\] has no name"),
    ([{"name": "a"}, {"name": "a"}], "names the project a twice"),
    ([{"name": "a", "file": ["x.yml"]}], "unknown keys file"),
    ([{"name": "a", "files": "x.yml"}], "files must be a list of text"),
    ([{"name": "a", "files": [""]}], "empty or non-text entry"),
    (["a"], "is 'a', not a project"),
    ({"name": "a"}, "must be a list of projects"),
])
def test_a_bad_stack_is_one_clear_line(projects, message):
    with pytest.raises(AnsibleFilterError, match=message) as info:
        F["compose_target"](projects)
    assert "\n" not in str(info.value)


# -- images -------------------------------------------------------------------------------------

def test_nested_images_and_service_counts():
    assert F["stack_images_nested"](STACK_IMAGES) is True
    assert F["stack_images_nested"]({"api": A}) is False
    assert F["stack_images_nested"]({}) is False
    assert F["stack_services_count"](STACK_IMAGES) == 5
    assert F["stack_services_count"]({"api": A, "worker": B}) == 2
    assert F["stack_services_count"]({}) == 0
    assert F["stack_services_count"]({"p": {}}) == 0
    with pytest.raises(AnsibleFilterError, match="mixes projects with services"):
        F["stack_services_count"]({"p": {"api": A}, "worker": B})


def test_a_stack_s_rollback_restores_only_the_projects_its_deployment_changed():
    result = {"changed": True, "projects": [{"name": "demo-core-platform", "changed": False},
                                            {"name": "demo-pattern-analysis", "changed": True},
                                            {"name": "demo-frontends", "changed": False}],
              "previous_images": STACK_IMAGES, "current_images": STACK_IMAGES}
    assert F["stack_changed_projects"](result) == ["demo-pattern-analysis"]
    assert F["stack_replaced_images"](result) == {"demo-pattern-analysis": STACK_IMAGES["demo-pattern-analysis"]}
    assert F["stack_replaced_images"](dict(result, changed=False, projects=[{"name": "demo-core-platform", "changed": False}])) == {}
    # a failed stack: compose_deploy already kept only the projects it changed
    failed = {"changed_projects": ["demo-core-platform"], "previous_images": {"demo-core-platform": {"data-api": A}}}
    assert F["stack_changed_projects"](failed) == ["demo-core-platform"]
    assert F["stack_replaced_images"](failed) == {"demo-core-platform": {"data-api": A}}
    # a project deployed for the first time had nothing before: nothing to restore, and the
    # rollback (the pipeline's, the fleet revert's) is not asked to restore an empty project
    first = {"changed_projects": ["demo-core-platform", "demo-frontends"],
             "previous_images": {"demo-core-platform": {"data-api": A}, "demo-frontends": {}}}
    assert F["stack_replaced_images"](first) == {"demo-core-platform": {"data-api": A}}
    all_new = {"changed_projects": ["demo-core-platform"], "previous_images": {"demo-core-platform": {}}}
    assert F["stack_replaced_images"](all_new) == {}
    assert F["stack_services_count"](F["stack_replaced_images"](all_new)) == 0
    # one project: its previous images as they are
    assert F["stack_replaced_images"]({"changed": False, "previous_images": {"api": A}}) == {"api": A}
    assert F["stack_changed_projects"]({"changed": True, "previous_images": {"api": A}}) == []


# -- failing services ---------------------------------------------------------------------------

def test_failing_checks_of_a_single_project_keep_today_s_matching():
    failing = F["stack_failing_services"](["worker", "GET /api/stats", "api", "worker"], {"api": A, "worker": B}, {"api": C})
    assert failing == [{"project": "", "service": "worker"}, {"project": "", "service": "api"}]
    # a service only in the previous images (removed by the release) still counts
    assert F["stack_failing_services"](["old"], {"api": A}, {"old": C}) == [{"project": "", "service": "old"}]


def test_failing_checks_of_a_stack_are_found_in_their_project():
    current = {"demo-pattern-analysis": {"ai-pattern-service": C, "ai-automation-service": A}}
    previous = {"demo-pattern-analysis": {"ai-pattern-service": B, "ai-automation-service": A},
                "demo-core-platform": {"data-api": B}}
    failing = F["stack_failing_services"](
        ["ai-pattern-service", "demo-core-platform/data-api", {"project": "demo-pattern-analysis", "service": "ai-automation-service"},
         {"name": "data-api"}, "health-dashboard", "nope/data-api"], current, previous)
    assert failing == [
        {"project": "demo-pattern-analysis", "service": "ai-pattern-service"},
        {"project": "demo-core-platform", "service": "data-api"},
        {"project": "demo-pattern-analysis", "service": "ai-automation-service"},
    ]


def test_a_stack_s_failed_deploy_names_services_of_the_project_it_stopped_at():
    images = {"p1": {"api": A}, "p2": {"api": B, "worker": C}}
    assert F["stack_failing_services"](["api", "worker"], images, images, project="p2") == [
        {"project": "p2", "service": "api"}, {"project": "p2", "service": "worker"}]
    # the project it stopped at changed nothing: its services are not another project's
    assert F["stack_failing_services"](["api"], {"p1": {"api": A}}, None, project="p3") == []


def test_a_service_name_shared_by_two_projects_names_both():
    images = {"p1": {"api": A}, "p2": {"api": B}}
    assert F["stack_failing_services"](["api"], images, None) == [{"project": "p1", "service": "api"}, {"project": "p2", "service": "api"}]
    assert F["stack_failing_services"](["p2/api"], images, None) == [{"project": "p2", "service": "api"}]
    assert F["stack_failing_services"]([], images, images) == []
    assert F["stack_failing_services"](["api"], {}, {}) == []


# -- logs commands ------------------------------------------------------------------------------

def test_logs_of_a_single_project_follow_compose_s_path_rule():
    target = S.compose_target([], project_name="homeiq", files=["compose.yaml", "override.yml"], env_files=["release.env"])
    [cmd] = F["compose_logs_commands"]([{"project": "", "service": "api"}], target, tail=50, prefix="/r/deploy-1")
    assert cmd["argv"] == ["docker", "compose", "--project-name", "homeiq", "--file", "compose.yaml", "--file", "override.yml",
                           "--env-file", "release.env", "logs", "--no-color", "--timestamps", "--tail", "50", "api"]
    assert "--project-directory" not in cmd["argv"]
    assert (cmd["label"], cmd["path"]) == ("api", "/r/deploy-1-api.log")
    # nothing named: Compose's own default file and name, from the working directory
    [cmd] = F["compose_logs_commands"](["api"], {}, tail=200)
    assert cmd["argv"] == ["docker", "compose", "logs", "--no-color", "--timestamps", "--tail", "200", "api"]
    assert cmd["path"] == "api.log"
    [cmd] = F["compose_logs_commands"](["api"], {"project_directory": "app"}, tail=1)
    assert cmd["argv"][:4] == ["docker", "compose", "--project-directory", "app"]


def test_logs_of_a_stack_are_read_from_each_service_s_own_project():
    target = S.compose_target(STACK)
    cmds = F["compose_logs_commands"]([{"project": "demo-pattern-analysis", "service": "ai-pattern-service"},
                                       {"project": "demo-frontends", "service": "health-dashboard"}], target, prefix="/r/d")
    assert cmds[0]["argv"] == [
        "docker", "compose", "--project-name", "demo-pattern-analysis", "--file", "domains/pattern-analysis/compose.yml",
        "--env-file", ".env", "--profile", "production", "--project-directory", "domains/pattern-analysis",
        "logs", "--no-color", "--timestamps", "--tail", "200", "ai-pattern-service"]
    assert cmds[1]["argv"] == ["docker", "compose", "--project-name", "demo-frontends", "--file", "domains/frontends/compose.yml",
                               "logs", "--no-color", "--timestamps", "--tail", "200", "health-dashboard"]
    assert [(c["label"], c["path"]) for c in cmds] == [
        ("demo-pattern-analysis/ai-pattern-service", "/r/d-demo-pattern-analysis-ai-pattern-service.log"),
        ("demo-frontends/health-dashboard", "/r/d-demo-frontends-health-dashboard.log")]
    with pytest.raises(AnsibleFilterError, match="project 'other', which is not in deploy_projects"):
        F["compose_logs_commands"]([{"project": "other", "service": "x"}], target)


# -- summary ------------------------------------------------------------------------------------

def svc(name, image_id, changed, project=None, state="running", health="healthy"):
    s = {"name": name, "image_id": image_id, "state": state, "health": health, "changed": changed}
    if project:
        s["project"] = project
    return s


def test_the_summary_of_a_single_project_is_unchanged():
    result = {"project_name": "homeiq", "deployment_id": "deploy-1", "changed": True,
              "services": [svc("api", A, True), svc("worker", None, False, state=None, health=None)]}
    assert F["deploy_summary"](result, name="ignored", check_mode=False) == [
        "homeiq: 2 services, 1 changed by deployment deploy-1",
        "%-24s %-19s %-9s %-9s %s" % ("api", "a" * 12, "running", "healthy", "changed"),
        "%-24s %-19s %-9s %-9s %s" % ("worker", "to be built", "-", "-", "unchanged")]
    assert F["deploy_summary"](dict(result, changed=False), check_mode=True)[0] == (
        "homeiq: 2 services, nothing to change (check mode: predicted)")


def test_the_summary_of_a_stack_groups_the_services_by_project():
    result = {"project_name": "", "deployment_id": "deploy-2", "changed": True,
              "projects": [{"name": "p-core", "changed": False}, {"name": "p-ai", "changed": True}],
              "services": [svc("data-api", A, False, "p-core"), svc("ai-pattern", B, True, "p-ai"), svc("ai-auto", C, False, "p-ai")]}
    lines = F["deploy_summary"](result, name="homeiq")
    assert lines[0] == "homeiq: 2 projects, 3 services, 1 changed by deployment deploy-2 (projects changed: p-ai)"
    assert lines[1] == "[p-core] 1 services, unchanged"
    assert lines[2] == "  " + "%-24s %-19s %-9s %-9s %s" % ("data-api", "a" * 12, "running", "healthy", "unchanged")
    assert lines[3] == "[p-ai] 2 services, changed"
    assert [line.split()[0] for line in lines[4:]] == ["ai-pattern", "ai-auto"]
    unchanged = F["deploy_summary"](dict(result, changed=False, projects=[{"name": "p-core"}, {"name": "p-ai"}]), name="homeiq")
    assert unchanged[0] == "homeiq: 2 projects, 3 services, nothing to change"


# -- restore plan -------------------------------------------------------------------------------

def test_a_stack_rollback_restores_only_the_projects_its_images_name():
    target = S.compose_target(STACK)
    images = {"demo-frontends": {"health-dashboard": B}, "demo-pattern-analysis": {"ai-pattern-service": C}, "demo-core-platform": {}}
    plan = F["stack_restore_plan"](images, target)
    assert plan["error"] == "" and plan["stack"] is True
    assert plan["projects"] == ["demo-pattern-analysis", "demo-frontends"]  # stack order; compose_deploy reverses it
    assert plan["images"] == {"demo-pattern-analysis": {"ai-pattern-service": C}, "demo-frontends": {"health-dashboard": B}}
    assert plan["services"] == 2
    assert [p["name"] for p in plan["target"]["projects"]] == ["demo-pattern-analysis", "demo-frontends"]
    assert plan["target"]["projects"][0] == target["projects"][1]


def test_a_rollback_by_tag_names_every_project_and_a_single_project_is_left_as_it_is():
    target = S.compose_target(STACK)
    plan = F["stack_restore_plan"]({}, target)
    assert plan["error"] == "" and plan["projects"] == [p["name"] for p in STACK] and plan["target"] == target
    single = S.compose_target([], project_name="homeiq")
    plan = F["stack_restore_plan"]({"api": A}, single)
    assert plan == {"stack": False, "projects": [], "services": 1, "images": {"api": A}, "target": single, "error": ""}


@pytest.mark.parametrize("images, stack, message", [
    (STACK_IMAGES, False, "nested by compose project .* but deploy_projects is empty"),
    ({"api": A}, True, "one compose project's \\(services api\\), but deploy_projects names a stack"),
    ({"demo-other": {"api": A}}, True, "compose project demo-other, which is not in deploy_projects"),
    ({"demo-core-platform": {}}, True, "name no service"),
    ({"demo-core-platform": {"api": A}, "worker": B}, True, "mixes projects with services"),
])
def test_images_that_do_not_fit_the_settings_give_one_line(images, stack, message):
    target = S.compose_target(STACK if stack else [], project_name="homeiq")
    plan = F["stack_restore_plan"](images, target)
    assert plan["error"] and "\n" not in plan["error"]
    assert re.search(message, plan["error"]), plan["error"]
