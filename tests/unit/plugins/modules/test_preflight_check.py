"""The preflight_check module's own layer: arguments, fail_on_failure, check mode, no secrets."""
from __future__ import annotations

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homeiq.deploy.plugins.modules import preflight_check
from module_runner import Exit, Fail, module_calls  # noqa: F401  pylint: disable=unused-import


@pytest.fixture
def project(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  api:\n    image: x\n")
    (tmp_path / ".env").write_text("API_TOKEN=changeme\n")
    return tmp_path


def run(args):
    with patch_module_args(args):
        preflight_check.main()


def test_bad_input_is_one_line(module_calls, project):
    with pytest.raises(Fail) as info:
        run({"project_src": str(project), "warn": ["nonsense"]})
    msg = info.value.args[0]["msg"]
    assert msg.startswith("unknown check 'nonsense' in warn") and "\n" not in msg


def test_missing_project_src_is_one_line(module_calls, tmp_path):
    with pytest.raises(Fail) as info:
        run({"project_src": str(tmp_path / "absent")})
    assert "does not exist or is not a folder" in info.value.args[0]["msg"]


def test_gate_without_command_is_rejected_by_the_argument_spec(module_calls, project):
    with pytest.raises(Fail) as info:
        run({"project_src": str(project), "gates": [{"name": "x"}]})
    assert "command" in info.value.args[0]["msg"]


def test_failure_fails_the_task_with_the_whole_summary(module_calls, project):
    with pytest.raises(Fail) as info:
        run({"project_src": str(project), "only": ["tokens"]})
    res = info.value.args[0]
    assert res["changed"] is False and res["failed_checks"] == ["tokens"]
    assert res["msg"].startswith("preflight: 1 of 1 checks failed (tokens)")
    assert res["summary"][0].startswith("FAIL  tokens: API_TOKEN is a known default")


def test_fail_on_failure_false_reports_only(module_calls, project):
    with pytest.raises(Exit) as info:
        run({"project_src": str(project), "only": ["tokens"], "fail_on_failure": False})
    assert info.value.args[0]["failed_checks"] == ["tokens"]


def test_check_mode_runs_the_checks(module_calls, project):
    with pytest.raises(Exit) as info:
        run({"project_src": str(project), "only": ["gates"], "_ansible_check_mode": True,
             "gates": [{"name": "unit", "command": "echo ran-in-check-mode"}]})
    res = info.value.args[0]
    assert res["changed"] is False and res["checks"][0]["check"] == "gate:unit"
    assert res["checks"][0]["details"] == ["ran-in-check-mode"]


def test_token_options_never_come_back(module_calls, project):
    token = "tok-Q8m2Lx7RtZ9pW4vN6bK1"
    with pytest.raises(Exit) as info:
        run({"project_src": str(project), "only": ["home_assistant", "influxdb"], "fail_on_failure": False,
             "home_assistant_url": "http://127.0.0.1:9", "home_assistant_token": token,
             "influxdb_url": "http://127.0.0.1:9", "influxdb_token": token, "http_timeout": 2})
    res = info.value.args[0]
    assert token not in repr(res)
    assert {c["check"] for c in res["checks"]} == {"home_assistant", "influxdb"}


def test_projects_and_top_level_files_are_exclusive(module_calls, project):
    with pytest.raises(Fail) as info:
        run({"project_src": str(project), "files": ["compose.yaml"], "projects": [{"name": "pf-a", "files": ["compose.yaml"]}]})
    msg = info.value.args[0]["msg"]
    assert msg.startswith("projects cannot be combined with files") and "\n" not in msg


def test_compose_min_version_below_the_client_minimum_is_one_line(module_calls, project):
    with pytest.raises(Fail) as info:
        run({"project_src": str(project), "compose_min_version": "2.0.0"})
    assert info.value.args[0]["msg"].startswith("compose_min_version 2.0.0 is below 2.21.0")


def test_writing_the_baseline_reports_changed_and_check_mode_writes_nothing(module_calls, project):
    (project / "settings.yaml").write_text("db_password: Pw-9xQ2mL7vR4tK8zN1wB\n")
    args = {"project_src": str(project), "only": ["secret_scan"], "secret_scan_write_baseline": True}
    with pytest.raises(Exit) as info:
        run(dict(args, _ansible_check_mode=True))
    assert info.value.args[0]["changed"] is True and not (project / ".homeiq-secrets-baseline.json").exists()
    for changed in (True, False):
        with pytest.raises(Exit) as info:
            run(args)
        assert info.value.args[0]["changed"] is changed
    with pytest.raises(Exit) as info:
        run({"project_src": str(project), "only": ["secret_scan"]})
    assert "1 accepted by the baseline" in info.value.args[0]["checks"][0]["why"]
