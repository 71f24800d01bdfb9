"""The module's own layer: argument handling and one-line failures, without an engine."""
from __future__ import annotations


import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homeiq.deploy.plugins.modules import compose_deploy
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
