"""deploy_notify's module layer: argument spec and documentation agree, one-line failures,
warnings for failed channels, fail_on_error, and no secret in what it returns."""
from __future__ import annotations

import json
import socket

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homeiq.deploy.plugins.modules import deploy_notify


class Exit(Exception):
    pass


class Fail(Exception):
    pass


@pytest.fixture
def module_calls(monkeypatch):
    warnings = []

    def exit_json(self, **kw):
        raise Exit(kw)

    def fail_json(self, **kw):
        raise Fail(kw)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return warnings


def run(args):
    with patch_module_args(args):
        deploy_notify.main()


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


EVENT = {"deployment_id": "deploy-20251126-101500", "status": "failed"}


def test_event_is_required(module_calls):
    with pytest.raises(Fail) as info:
        run({})
    assert "event" in info.value.args[0]["msg"]


def test_bad_status_is_refused_by_the_spec(module_calls):
    with pytest.raises(Fail) as info:
        run({"event": {"deployment_id": "d", "status": "done"}})
    assert "status" in info.value.args[0]["msg"] and "rolled_back" in info.value.args[0]["msg"]


def test_bad_timestamp_is_one_line(module_calls):
    with pytest.raises(Fail) as info:
        run({"event": dict(EVENT, timestamp="26/11/2025")})
    msg = info.value.args[0]["msg"]
    assert msg.startswith("event.timestamp '26/11/2025' is not an ISO 8601 time") and "\n" not in msg


def test_starttls_and_ssl_together_are_refused(module_calls):
    with pytest.raises(Fail) as info:
        run({"event": EVENT, "smtp_starttls": True, "smtp_ssl": True})
    assert info.value.args[0]["msg"].startswith("smtp_starttls and smtp_ssl are both set")


def test_nothing_configured_exits_unchanged(module_calls):
    with pytest.raises(Exit) as info:
        run({"event": EVENT})
    res = info.value.args[0]
    assert res["channels"] == [] and res["changed"] is False and module_calls == []


def test_failed_channels_are_warnings_and_the_task_succeeds(module_calls):
    url = "http://127.0.0.1:%d/services/T0/B0/slack-secret-path" % closed_port()
    with pytest.raises(Exit) as info:
        run({"event": EVENT, "slack_webhook_url": url, "retry_delay": 0,
             "webhook_url": url.replace("services", "hook"), "webhook_headers": {"Authorization": "Bearer tok-secret"}})
    res = info.value.args[0]
    assert res["failed_channels"] == ["slack", "webhook"] and res["changed"] is False
    assert "failed" not in res   # Ansible would read a `failed` key as the task's own failure
    assert module_calls == [
        "slack notification failed: connection refused after 2 attempts (deployment deploy-20251126-101500 stays "
        "failed; the notification does not change that)",
        "webhook notification failed: connection refused after 2 attempts (deployment deploy-20251126-101500 stays "
        "failed; the notification does not change that)",
    ]
    text = json.dumps(res) + " ".join(module_calls)
    assert "slack-secret-path" not in text and "tok-secret" not in text


def test_fail_on_error_fails_with_the_channels_named(module_calls):
    url = "http://127.0.0.1:%d/hooks/webhook-secret" % closed_port()
    with pytest.raises(Fail) as info:
        run({"event": EVENT, "webhook_url": url, "retries": 0, "fail_on_error": True})
    res = info.value.args[0]
    assert res["msg"] == "notification failed: webhook: connection refused"
    assert res["failed_channels"] == ["webhook"] and "webhook-secret" not in json.dumps(res)


def test_check_mode_sends_nothing(module_calls, tmp_path):
    url = "http://127.0.0.1:%d/hook" % closed_port()
    with pytest.raises(Exit) as info:
        run({"event": EVENT, "webhook_url": url, "step_summary_path": str(tmp_path / "s.md"), "_ansible_check_mode": True})
    res = info.value.args[0]
    assert res["would_send"] == ["webhook", "step_summary"] and res["sent"] == [] and res["failed_channels"] == []
    assert res["changed"] is True and module_calls == [] and not (tmp_path / "s.md").exists()


def test_step_summary_from_the_environment(module_calls, monkeypatch, tmp_path):
    path = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    with pytest.raises(Exit) as info:
        run({"event": dict(EVENT, status="success", project="homeiq")})
    assert info.value.args[0]["sent"] == ["step_summary"]
    assert path.read_text().startswith("### \u2705 Deployment succeeded: homeiq")


def _captured_spec(monkeypatch):
    seen = {}
    original = basic.AnsibleModule.__init__

    def init(self, *args, **kwargs):
        seen.update(kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "__init__", init)

    def exit_json(self, **kw):
        raise Exit(kw)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    with pytest.raises(Exit):
        run({"event": EVENT})
    return seen["argument_spec"], seen


def _compare(spec, docs, where):
    assert set(spec) == set(docs), where
    for name, opt in spec.items():
        doc = docs[name]
        here = "%s.%s" % (where, name)
        assert doc.get("type", "str") == opt.get("type", "str"), here
        assert doc.get("default") == opt.get("default"), here
        assert doc.get("required", False) == opt.get("required", False), here
        assert doc.get("choices") == opt.get("choices"), here
        assert doc.get("elements") == opt.get("elements"), here
        assert doc.get("description"), here
        if "options" in opt:
            _compare(opt["options"], doc["suboptions"], here)


def test_argument_spec_and_documentation_agree(monkeypatch):
    spec, kwargs = _captured_spec(monkeypatch)
    doc = yaml.safe_load(deploy_notify.DOCUMENTATION)
    _compare(spec, doc["options"], "options")
    assert kwargs["supports_check_mode"] is True and doc["attributes"]["check_mode"]["support"] == "full"
    secret = {name for name, opt in spec.items() if opt.get("no_log")}
    assert secret == {"slack_webhook_url", "webhook_url", "webhook_headers", "smtp_password"}
    returned = yaml.safe_load(deploy_notify.RETURN)
    assert set(returned) == {"title", "status", "deployment_id", "channels", "would_send", "sent", "failed_channels",
                             "notifications"}
    assert set(returned["notifications"]["contains"]) == {"channel", "sent", "error", "skipped", "detail", "attempts",
                                                          "target"}
    for example in yaml.safe_load(deploy_notify.EXAMPLES):
        assert set(example["homeiq.deploy.deploy_notify"]) <= set(spec)
