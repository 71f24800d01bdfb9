"""The module's own layer: argument handling and one-line failures, without an engine."""
from __future__ import annotations


import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homeiq.deploy.plugins.modules import compose_deploy
from ansible_collections.homeiq.deploy.plugins.modules import preflight_check
from ansible_collections.homeiq.deploy.plugins.module_utils._stack import STACK_PROJECT_SPEC
from module_runner import Exit, Fail, module_calls  # noqa: F401  pylint: disable=unused-import


def run(args):
    with patch_module_args(args):
        compose_deploy.main()


def test_missing_project_src_is_one_line(module_calls, tmp_path):
    with pytest.raises(Fail) as info:
        run({"project_src": str(tmp_path / "absent")})
    msg = info.value.args[0]["msg"]
    assert "does not exist" in msg and "\n" not in msg and "Traceback" not in msg


def test_bad_restore_image_id(module_calls, tmp_path):
    with pytest.raises(Fail) as info:
        run({"project_src": str(tmp_path), "state": "restored", "restore_images": {"data-api": "latest"}})
    assert "is not a full image ID" in info.value.args[0]["msg"]


def test_invalid_choice_is_rejected_by_the_argument_spec(module_calls, tmp_path):
    with pytest.raises(Fail) as info:
        run({"project_src": str(tmp_path), "recreate": "sometimes"})
    assert "recreate" in info.value.args[0]["msg"]


def test_documentation_matches_argument_spec():
    import yaml
    doc = yaml.safe_load(compose_deploy.DOCUMENTATION)
    assert set(doc["options"]) >= {"project_src", "state", "restore_images", "lock_stale_after"}
    assert doc["attributes"]["check_mode"]["support"] == "full"


def _stack(tmp_path, *names):
    return [{"name": n, "files": [f"domains/{n}/compose.yml"], "env_files": [".env"]} for n in names]


@pytest.mark.parametrize("kw, expected", [
    ({"projects": [{"name": "core", "compose_file": "x.yml"}]}, "Unsupported parameters for (basic.py) module: projects.compose_file"),
    ({"projects": [{"files": ["x.yml"]}]}, "missing required arguments: name found in projects"),
    ({"projects": [{"name": ""}]}, "projects[0] has no name"),
    ({"duplicate": True}, "project core is listed twice in projects"),
    ({"files": ["compose.yml"]}, "files cannot be given with projects"),
    ({"project_name": "homeiq"}, "project_name cannot be given with projects"),
    ({"state": "restored", "restore_images": {"elsewhere": {"api": "sha256:" + "a" * 64}}},
     "restore_images names project elsewhere that is not in projects (core, edge)"),
])
def test_bad_stack_input_is_one_line(module_calls, tmp_path, kw, expected):
    args = {"project_src": str(tmp_path), "projects": _stack(tmp_path, "core", "edge")}
    if kw.pop("duplicate", False):
        args["projects"] = _stack(tmp_path, "core", "core")
    args.update(kw)
    with pytest.raises(Fail) as info:
        run(args)
    msg = info.value.args[0]["msg"]
    assert expected in msg and "\n" not in msg and "Traceback" not in msg


def test_a_missing_file_in_a_later_project_names_it(module_calls, tmp_path):
    """Every project's files are checked before Compose runs for the first: the third one's missing file stops the run."""
    for n in ("core", "edge"):
        (tmp_path / "domains" / n).mkdir(parents=True)
        (tmp_path / "domains" / n / "compose.yml").write_text("services: {}\n")
    (tmp_path / ".env").write_text("")
    projects = _stack(tmp_path, "core", "edge", "frontends")
    with pytest.raises(Fail) as info:
        run({"project_src": str(tmp_path), "projects": projects})
    result = info.value.args[0]
    assert result["msg"] == (f"project frontends: compose file {tmp_path}/domains/frontends/compose.yml does not exist: "
                             "fix `files`")
    assert result["stack_changed"] is False and result["changed_projects"] == [] and result["previous_images"] == {}
    assert result["failed_project"] == "frontends" and result["not_started"] == ["core", "edge", "frontends"]


def test_project_directory_must_exist(module_calls, tmp_path):
    with pytest.raises(Fail) as info:
        run({"project_src": str(tmp_path), "project_directory": "domains/none"})
    msg = info.value.args[0]["msg"]
    assert msg.startswith(f"project_directory {tmp_path}/domains/none does not exist") and "\n" not in msg


@pytest.mark.parametrize("module", [compose_deploy, preflight_check], ids=["compose_deploy", "preflight_check"])
def test_stack_options_are_documented(module):
    """Both modules take `projects` from one argument spec (_stack.STACK_PROJECT_SPEC) and document it as it is."""
    import yaml
    doc = yaml.safe_load(module.DOCUMENTATION)
    entry = doc["options"]["projects"]["suboptions"]
    assert set(entry) == set(STACK_PROJECT_SPEC)
    for key, spec in STACK_PROJECT_SPEC.items():
        assert entry[key]["type"] == spec["type"] and entry[key].get("elements") == spec.get("elements"), key
        assert entry[key]["description"], key


def test_stack_results_are_documented():
    import yaml
    ret = yaml.safe_load(compose_deploy.RETURN)
    assert {"projects", "failed_project", "changed_projects", "not_started"} <= set(ret)
