"""health_probe's module layer: argument spec, documentation and one-line failures."""
from __future__ import annotations

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homeiq.deploy.plugins.modules import health_probe
from module_runner import Exit, Fail, module_calls  # noqa: F401  pylint: disable=unused-import


def run(args):
    with patch_module_args(args):
        health_probe.main()


def test_targets_are_required(module_calls):
    with pytest.raises(Fail) as info:
        run({})
    assert "targets" in info.value.args[0]["msg"]


def test_bad_jmespath_is_one_line(module_calls):
    with pytest.raises(Fail) as info:
        run({"targets": [{"name": "a", "url": "http://127.0.0.1:9/", "json_query": "a[?"}]})
    msg = info.value.args[0]["msg"]
    assert msg.startswith("target a: json_query 'a[?' is not valid JMESPath") and "\n" not in msg


def test_bad_fail_on_choice(module_calls):
    with pytest.raises(Fail) as info:
        run({"targets": [{"name": "a", "url": "http://127.0.0.1:9/"}], "fail_on": "sometimes"})
    assert "fail_on" in info.value.args[0]["msg"]


def test_refused_critical_target_fails_with_the_report_fields(module_calls, tmp_path):
    with pytest.raises(Fail) as info:
        run({"targets": [{"name": "influxdb", "url": "http://127.0.0.1:9/health", "critical": True,
                          "headers": {"Authorization": "Token abc"}}],
             "retries": 0, "report_path": str(tmp_path / "r.json")})
    res = info.value.args[0]
    assert res["msg"].startswith("health fail: 1 of 1 services unhealthy: influxdb (critical): connection refused")
    assert res["overall_status"] == "fail" and res["changed"] is False
    assert (tmp_path / "r.json").exists()
    assert "Token abc" not in repr(res)


def test_argument_spec_and_documentation_agree():
    doc = yaml.safe_load(health_probe.DOCUMENTATION)
    opts = doc["options"]
    assert set(opts) == {"targets", "concurrency", "timeout", "retries", "retry_delay", "deadline", "critical_only",
                         "fail_on", "report_path", "validate_certs", "max_body_bytes", "compose_project",
                         "compose_project_critical"}
    assert set(opts["targets"]["suboptions"]) == {
        "name", "url", "critical", "method", "headers", "body", "expected_status", "max_latency_ms", "json_query",
        "json_equals", "body_contains", "container", "follow_redirects"}
    assert (opts["concurrency"]["default"], opts["timeout"]["default"], opts["retries"]["default"],
            opts["retry_delay"]["default"], opts["fail_on"]["default"]) == (16, 10, 3, 2, "critical")
    assert opts["targets"]["suboptions"]["expected_status"]["default"] == [200]
    assert opts["targets"]["suboptions"]["max_latency_ms"]["default"] == 500
    yaml.safe_load(health_probe.EXAMPLES)
    yaml.safe_load(health_probe.RETURN)


def test_headers_suboption_is_no_log(monkeypatch):
    seen = {}

    class Stop(Exception):
        pass

    def fake_init(self, argument_spec, **kw):
        seen.update(argument_spec)
        raise Stop()

    monkeypatch.setattr(basic.AnsibleModule, "__init__", fake_init)
    with pytest.raises(Stop):
        health_probe.main()
    assert seen["targets"]["options"]["headers"]["no_log"] is True
