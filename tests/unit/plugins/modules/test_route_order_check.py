"""route_order_check's module layer: arguments, results and one-line failures."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homeiq.deploy.plugins.modules import route_order_check
from module_runner import Exit, Fail, module_calls  # noqa: F401  pylint: disable=unused-import

FIXTURES = Path(__file__).resolve().parents[3] / "integration" / "routes"


def run(args):
    with patch_module_args(args):
        route_order_check.main()


def test_source_mode_fails_naming_the_shadowed_route(module_calls):
    with pytest.raises(Fail) as info:
        run({"mode": "source", "path": str(FIXTURES / "ai_pattern_service")})
    res = info.value.args[0]
    assert res["msg"].startswith("1 unreachable route in ")
    assert "GET /api/v1/synergies/stats (shadowed by /api/v1/synergies/{synergy_id})" in res["msg"]
    assert res["ok"] is False and res["changed"] is False
    assert res["shadowed"][0]["shadowed_by_name"] == "get_synergy"


def test_source_mode_passes_a_correct_app(module_calls):
    with pytest.raises(Exit) as info:
        run({"mode": "source", "path": str(FIXTURES / "correct_app"),
             "expect_before": [["/api/v1/synergies/stats", "/api/v1/synergies/{synergy_id}"]]})
    res = info.value.args[0]
    assert res["ok"] is True and res["changed"] is False and res["shadowed"] == []
    assert res["mode"] == "source"


def test_allow_turns_a_known_bug_into_a_pass(module_calls):
    with pytest.raises(Exit) as info:
        run({"mode": "source", "path": str(FIXTURES / "task_service"), "allow": ["GET /api/tasks/history"]})
    assert info.value.args[0]["allowed"][0]["path"] == "/api/tasks/history"


def test_expect_before_out_of_order_fails(module_calls):
    with pytest.raises(Fail) as info:
        run({"mode": "source", "path": str(FIXTURES / "correct_app"),
             "expect_before": [["/files/{file_path}", "/health"]]})
    res = info.value.args[0]
    assert "expected /files/{file_path} before /health: registered in the wrong order" in res["msg"]


@pytest.mark.parametrize("args, needle", [
    ({"mode": "container"}, "container"),
    ({"mode": "openapi"}, "url"),
    ({"mode": "source"}, "path"),
])
def test_each_mode_requires_its_source(module_calls, args, needle):
    with pytest.raises(Fail) as info:
        run(args)
    assert needle in info.value.args[0]["msg"]


def test_bad_regex_is_one_line(module_calls):
    with pytest.raises(Fail) as info:
        run({"mode": "source", "path": str(FIXTURES / "correct_app"), "path_filter": "(["})
    msg = info.value.args[0]["msg"]
    assert msg.startswith("path_filter is not a valid regular expression") and "\n" not in msg


def test_unreachable_openapi_url_is_one_line(module_calls):
    with pytest.raises(Fail) as info:
        run({"mode": "openapi", "url": "http://127.0.0.1:9/openapi.json", "timeout": 2})
    assert info.value.args[0]["msg"].startswith("cannot fetch the OpenAPI document http://127.0.0.1:9/openapi.json")


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(route_order_check.DOCUMENTATION)
    assert set(doc["options"]) == {"mode", "container", "app", "python", "workdir", "url", "headers",
                                   "validate_certs", "timeout", "path", "path_filter", "expect_before", "allow"}
    assert doc["options"]["mode"]["default"] == "container"
    assert doc["attributes"]["check_mode"]["support"] == "full"
    yaml.safe_load(route_order_check.EXAMPLES)
    yaml.safe_load(route_order_check.RETURN)
