"""deploy_notify's logic: the event, the four payloads, secret masking, and sending with retries
(against HTTP and SMTP servers started here on 127.0.0.1)."""
from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime, timezone
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _notify as n

SHA = "3f5c2a9d0e4b8c7a6f1e2d3c4b5a69788796a5b4"
NOW = datetime(2025, 11, 26, 10, 15, 0, tzinfo=timezone.utc)


def full_event(**over):
    raw = {
        "deployment_id": "deploy-20251126-101500", "status": "rolled_back", "commit": SHA, "branch": "main",
        "project": "homeiq", "environment": "prod", "host": "homeiq-1",
        "failing_checks": ["data-api: HTTP 503", {"name": "admin-api", "error": "connection refused"}],
        "rollback": {"to": "deploy-20251125-090000", "status": "success"},
        "report_path": "/var/lib/homeiq/reports/health.json", "notes": "logs: /var/lib/homeiq/logs/deploy-20251126-101500",
        "timestamp": "2025-11-26T10:15:00Z",
    }
    raw.update(over)
    return n.build_event(raw, repository="org/homeiq", workflow_run_id="4242",
                         workflow_url="https://github.com/org/homeiq/actions/runs/4242",
                         commit_url="https://github.com/org/homeiq/commit/{commit}")


def minimal_event(status="failed"):
    return n.build_event({"deployment_id": "deploy-1", "status": status}, now=NOW)


# --- the event -----------------------------------------------------------------------------


def test_event_normalises_blanks_checks_and_time():
    ev = n.build_event({"deployment_id": " deploy-1 ", "status": "failed", "commit": "", "branch": "  ",
                        "failing_checks": ["", None, "a: b", {"name": "c", "status": "unhealthy"}, {"name": "d"},
                                           {"other": 1}],
                        "timestamp": "2025-11-26T11:15:00+01:00"})
    assert ev.deployment_id == "deploy-1" and ev.commit is None and ev.branch is None
    assert ev.failing_checks == ["a: b", "c: unhealthy", "d", '{"other": 1}']
    assert ev.timestamp == NOW
    assert n.build_event({"deployment_id": "x", "status": "success", "timestamp": "2025-11-26T10:15:00"}).timestamp == NOW


def test_event_time_defaults_to_now_in_utc_seconds():
    ev = n.build_event({"deployment_id": "x", "status": "success"}, now=datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=timezone.utc))
    assert n.iso(ev.timestamp) == "2025-01-02T03:04:05Z"


@pytest.mark.parametrize("raw, message", [
    ({"status": "failed"}, "event.deployment_id is empty"),
    ({"deployment_id": "x", "status": "broken"}, "event.status 'broken' is not one of success, failed, rolled_back, rollback_failed"),
    ({"deployment_id": "x", "status": "failed", "timestamp": "yesterday"}, "event.timestamp 'yesterday' is not an ISO 8601 time"),
    ({"deployment_id": "x", "status": "failed", "rollback": "deploy-0"}, "event.rollback must be a dict (or null), not str"),
])
def test_bad_events_are_one_line_errors(raw, message):
    with pytest.raises(n.NotifyInputError) as info:
        n.build_event(raw)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


@pytest.mark.parametrize("template, commit, url", [
    ("https://github.com/org/repo/commit/{commit}", "abc123", "https://github.com/org/repo/commit/abc123"),
    ("https://github.com/org/repo/commit/", "abc123", "https://github.com/org/repo/commit/abc123"),
    ("https://gitlab.example/org/repo/-/commit", "abc123", "https://gitlab.example/org/repo/-/commit/abc123"),
    ("https://x/{commit}?from={commit}", "a b", "https://x/a%20b?from=a%20b"),
    ("", "abc", None),
    ("https://x/", None, None),
])
def test_commit_link(template, commit, url):
    assert n.commit_link(template, commit) == url


@pytest.mark.parametrize("status, headline", [
    ("success", "Deployment succeeded"), ("failed", "Deployment failed"),
    ("rolled_back", "Deployment failed and was rolled back"),
    ("rollback_failed", "Deployment failed and its rollback failed"),
])
def test_titles(status, headline):
    assert n.title(full_event(status=status)) == headline + ": homeiq to prod on homeiq-1"
    assert n.title(minimal_event(status)) == headline + ": deployment deploy-1"


# --- Slack ---------------------------------------------------------------------------------


def test_slack_payload_full_shape():
    assert n.slack_payload(full_event()) == {
        "text": ":warning: *Deployment failed and was rolled back: homeiq to prod on homeiq-1*",
        "attachments": [{
            "color": "warning",
            "fields": [
                {"title": "Deployment ID", "value": "deploy-20251126-101500", "short": True},
                {"title": "Status", "value": "rolled_back", "short": True},
                {"title": "Branch", "value": "main", "short": True},
                {"title": "Commit", "value": "<https://github.com/org/homeiq/commit/%s|3f5c2a9d0e4b>" % SHA, "short": True},
                {"title": "Workflow", "value": "<https://github.com/org/homeiq/actions/runs/4242|run 4242>", "short": True},
                {"title": "Environment", "value": "prod", "short": True},
                {"title": "Host", "value": "homeiq-1", "short": True},
                {"title": "Failing checks", "value": "\u2022 data-api: HTTP 503\n\u2022 admin-api: connection refused",
                 "short": False},
                {"title": "Rollback", "value": "to: deploy-20251125-090000, status: success", "short": False},
                {"title": "Notes", "value": "logs: /var/lib/homeiq/logs/deploy-20251126-101500", "short": False},
            ],
            "footer": "homeiq.deploy",
            "ts": 1764152100,
        }],
    }


@pytest.mark.parametrize("status, color, emoji", [
    ("success", "good", ":white_check_mark:"), ("failed", "danger", ":x:"),
    ("rolled_back", "warning", ":warning:"), ("rollback_failed", "danger", ":rotating_light:"),
])
def test_slack_colour_and_emoji_by_outcome(status, color, emoji):
    payload = n.slack_payload(minimal_event(status))
    assert payload["attachments"][0]["color"] == color
    assert payload["text"].startswith(emoji + " *")


def test_slack_minimal_event_has_only_id_and_status():
    payload = n.slack_payload(minimal_event())
    assert [f["title"] for f in payload["attachments"][0]["fields"]] == ["Deployment ID", "Status"]
    assert payload["attachments"][0]["ts"] == int(NOW.timestamp())


def test_slack_commit_without_url_and_workflow_without_url():
    ev = n.build_event({"deployment_id": "d", "status": "failed", "commit": "v1.2"}, workflow_run_id="77")
    fields = {f["title"]: f["value"] for f in n.slack_payload(ev)["attachments"][0]["fields"]}
    assert fields["Commit"] == "v1.2" and fields["Workflow"] == "run 77"


def test_slack_escapes_control_characters_and_refuses_odd_link_urls():
    ev = n.build_event({"deployment_id": "d", "status": "failed", "branch": "fix/<a>&b", "commit": "abc",
                        "failing_checks": ["x > y"]}, commit_url="https://x/{commit}|evil")
    fields = {f["title"]: f["value"] for f in n.slack_payload(ev)["attachments"][0]["fields"]}
    assert fields["Branch"] == "fix/&lt;a&gt;&amp;b"
    assert fields["Failing checks"] == "\u2022 x &gt; y"
    assert fields["Commit"] == "abc"


def test_slack_lists_at_most_twenty_checks():
    ev = n.build_event({"deployment_id": "d", "status": "failed", "failing_checks": ["c%d" % i for i in range(25)]})
    value = {f["title"]: f["value"] for f in n.slack_payload(ev)["attachments"][0]["fields"]}["Failing checks"]
    assert value.count("\u2022") == 20 and value.endswith("\u2026 and 5 more")
    assert len(n.webhook_payload(ev)["failing_checks"]) == 25


# --- webhook, e-mail, step summary -----------------------------------------------------------


def test_webhook_payload_full_shape():
    assert n.webhook_payload(full_event()) == {
        "deployment_id": "deploy-20251126-101500", "status": "rolled_back", "commit": SHA, "branch": "main",
        "repository": "org/homeiq", "environment": "prod", "host": "homeiq-1", "project": "homeiq",
        "timestamp": "2025-11-26T10:15:00Z",
        "failing_checks": ["data-api: HTTP 503", "admin-api: connection refused"],
        "rollback": {"to": "deploy-20251125-090000", "status": "success"},
        "workflow_run_id": "4242", "workflow_url": "https://github.com/org/homeiq/actions/runs/4242",
        "report_path": "/var/lib/homeiq/reports/health.json",
        "notes": "logs: /var/lib/homeiq/logs/deploy-20251126-101500",
        "rollout": None,
    }


def test_webhook_payload_keeps_every_key_when_unknown():
    payload = n.webhook_payload(minimal_event())
    assert payload == {"deployment_id": "deploy-1", "status": "failed", "commit": None, "branch": None, "repository": None,
                       "environment": None, "host": None, "project": None, "timestamp": "2025-11-26T10:15:00Z",
                       "failing_checks": [], "rollback": None, "workflow_run_id": None, "workflow_url": None,
                       "report_path": None, "notes": None, "rollout": None}
    json.dumps(payload)


def test_email_message_headers_and_body():
    msg = n.email_message(full_event(), "Deploy <deploy@example.com>", ["a@example.com", "b@example.com"])
    assert msg["Subject"] == "Deployment failed and was rolled back: homeiq to prod on homeiq-1 (deploy-20251126-101500)"
    assert msg["To"] == "a@example.com, b@example.com" and msg["From"] == "Deploy <deploy@example.com>"
    assert msg["Message-ID"].endswith("@example.com>")
    assert msg["X-HomeIQ-Deployment-Status"] == "rolled_back"
    body = msg.get_content()
    assert body.splitlines()[:14] == [
        "Deployment failed and was rolled back: homeiq to prod on homeiq-1",
        "",
        "Deployment ID: deploy-20251126-101500",
        "Status:        rolled_back",
        "Project:       homeiq",
        "Environment:   prod",
        "Host:          homeiq-1",
        "Branch:        main",
        "Commit:        %s (https://github.com/org/homeiq/commit/%s)" % (SHA, SHA),
        "Repository:    org/homeiq",
        "Workflow:      run 4242 (https://github.com/org/homeiq/actions/runs/4242)",
        "Time:          2025-11-26T10:15:00Z",
        "Rollback:      to: deploy-20251125-090000, status: success",
        "Report:        /var/lib/homeiq/reports/health.json",
    ]
    assert "Failing checks:\n  - data-api: HTTP 503\n  - admin-api: connection refused\n" in body
    assert "Notes:\n  logs: /var/lib/homeiq/logs/deploy-20251126-101500\n" in body


def test_step_summary_markdown():
    md = n.step_summary_markdown(full_event())
    assert md.splitlines() == [
        "### \u26a0\ufe0f Deployment failed and was rolled back: homeiq to prod on homeiq-1",
        "",
        "| | |",
        "| --- | --- |",
        "| Deployment ID | `deploy-20251126-101500` |",
        "| Status | `rolled_back` |",
        "| Project | homeiq |",
        "| Environment | prod |",
        "| Host | homeiq-1 |",
        "| Branch | main |",
        "| Commit | [`3f5c2a9d0e4b`](https://github.com/org/homeiq/commit/%s) |" % SHA,
        "| Repository | org/homeiq |",
        "| Workflow | [run 4242](https://github.com/org/homeiq/actions/runs/4242) |",
        "| Time | 2025-11-26T10:15:00Z |",
        "| Rollback | to: deploy-20251125-090000, status: success |",
        "| Report | `/var/lib/homeiq/reports/health.json` |",
        "",
        "**Failing checks**",
        "",
        "- data-api: HTTP 503",
        "- admin-api: connection refused",
        "",
        "**Notes**",
        "",
        "logs: /var/lib/homeiq/logs/deploy-20251126-101500",
    ]


def test_step_summary_escapes_table_breakers():
    ev = n.build_event({"deployment_id": "d|1", "status": "success", "branch": "a|b*c", "notes": "x\ny"})
    md = n.step_summary_markdown(ev)
    assert "| Deployment ID | d\\|1 |" in md
    assert "| Branch | a\\|b\\*c |" in md
    assert md.rstrip().endswith("x<br>y")
    assert md.startswith("### \u2705 Deployment succeeded")


# --- a rollout over several hosts ------------------------------------------------------------

# deploy.yml's homeiq_rollout after a breach with fleet_revert, as the fleet test produces it.
REVERTED = {
    "deployment_id": "deploy-20261127-041502-k2m9", "status": "reverted",
    "updated": [], "unchanged": [], "failed": {"h2": "rolled_back"}, "reverted": ["h1"], "revert_failed": {},
    "not_started": ["h3"], "unreachable": [], "batches": [["h1"], ["h2"]],
    "stopped": {"batch": 2, "hosts": ["h2"], "failed": ["h2"], "percentage": 100.0},
}


def rollout_event(rollout=None, **over):
    raw = {"deployment_id": "deploy-20261127-041502-k2m9", "project": "homeiq", "environment": "prod",
           "commit": SHA, "rollout": dict(REVERTED if rollout is None else rollout)}
    raw.update(over)
    return n.build_event(raw, now=NOW)


@pytest.mark.parametrize("status, implied, headline", [
    ("success", "success", "Rollout succeeded"),
    ("completed_with_failures", "failed", "Rollout completed with failed hosts"),
    ("stopped", "failed", "Rollout stopped at its failure threshold"),
    ("reverted", "rolled_back", "Rollout stopped and the fleet was reverted"),
    ("revert_failed", "rollback_failed", "Rollout stopped and its fleet revert failed"),
])
def test_a_rollout_implies_the_status_and_titles_the_fleet(status, implied, headline):
    ev = rollout_event(dict(REVERTED, status=status))
    assert ev.status == implied
    # h1, h2 and h3 are named once each, whatever their outcome; no single host is shown.
    assert n.title(ev) == headline + ": homeiq to prod on 3 hosts"
    assert rollout_event(dict(REVERTED, status=status), status=implied).status == implied


def test_rollout_lines_say_what_happened_to_each_host():
    rollout = dict(REVERTED, status="revert_failed", updated=["h4"], unchanged=["h5"], unreachable=["h6"],
                   reverted=[], revert_failed={"h1": "verify failed"})
    assert n.rollout_lines(n.parse_rollout(rollout)) == [
        "stopped at batch 2: 1 of 1 hosts failed (100.0%)",
        "updated: h4",
        "already on the release: h5",
        "failed: h2 (rolled back)",
        "REVERT FAILED, left on the new release: h1",
        "not started: h3",
        "unreachable: h6",
    ]
    assert n.rollout_lines(n.parse_rollout({"status": "success", "updated": ["a", "b"]})) == ["updated: a, b"]


def test_rollout_channels_list_the_hosts():
    ev = rollout_event()
    slack = n.slack_payload(ev)
    assert slack["text"] == ":warning: *Rollout stopped and the fleet was reverted: homeiq to prod on 3 hosts*"
    fields = {f["title"]: f["value"] for f in slack["attachments"][0]["fields"]}
    assert fields["Status"] == "reverted" and "Host" not in fields
    assert fields["Hosts"] == ("\u2022 stopped at batch 2: 1 of 1 hosts failed (100.0%)\n\u2022 failed: h2 (rolled back)\n"
                               "\u2022 reverted to their previous images: h1\n\u2022 not started: h3")
    hook = n.webhook_payload(ev)
    assert hook["status"] == "rolled_back" and hook["host"] is None
    assert hook["rollout"]["reverted"] == ["h1"] and hook["rollout"]["failed"] == {"h2": "rolled_back"}
    assert hook["rollout"]["stopped"]["batch"] == 2 and hook["rollout"]["batches"] == [["h1"], ["h2"]]
    json.dumps(hook)
    msg = n.email_message(ev, "deploy@example.com", ["oncall@example.com"])
    assert msg["X-HomeIQ-Deployment-Status"] == "rolled_back"
    assert msg["Subject"] == "Rollout stopped and the fleet was reverted: homeiq to prod on 3 hosts (%s)" % ev.deployment_id
    body = msg.get_content()
    assert "Status:        reverted\n" in body
    assert "Hosts:\n  - stopped at batch 2: 1 of 1 hosts failed (100.0%)\n  - failed: h2 (rolled back)\n" in body
    md = n.step_summary_markdown(ev)
    assert md.startswith("### \u26a0\ufe0f Rollout stopped and the fleet was reverted: homeiq to prod on 3 hosts\n")
    assert "| Status | `reverted` |" in md
    assert "**Hosts**\n\n- stopped at batch 2: 1 of 1 hosts failed (100.0%)\n- failed: h2 (rolled back)\n" in md


def test_a_rollout_lists_at_most_twenty_hosts_a_line_and_the_webhook_all():
    hosts = ["web-%02d" % i for i in range(45)]
    ev = rollout_event({"status": "success", "updated": hosts})
    assert n.title(ev).endswith("on 45 hosts")
    assert n.rollout_lines(ev.rollout) == ["updated: " + ", ".join(hosts[:20]) + " \u2026 and 25 more"]
    assert n.webhook_payload(ev)["rollout"]["updated"] == hosts


@pytest.mark.parametrize("over, message", [
    ({"status": "success"}, "event.status 'success' disagrees with event.rollout.status 'reverted'"),
    ({"rollout": {"status": "half"}}, "event.rollout.status 'half' is not one of success, completed_with_failures"),
    ({"rollout": "deploy-1"}, "event.rollout must be a dict"),
    ({"rollout": {"status": "success", "updated": "h1"}}, "event.rollout.updated must be a list of host names, not str"),
    ({"rollout": {"status": "stopped", "stopped": ["h1"]}}, "event.rollout.stopped must be a dict"),
    ({"rollout": None}, "event.status is empty: give one of success, failed, rolled_back, rollback_failed, or a rollout"),
])
def test_bad_rollouts_are_one_line_errors(over, message):
    raw = {"deployment_id": "d", "rollout": REVERTED}
    raw.update(over)
    with pytest.raises(n.NotifyInputError) as info:
        n.build_event(raw)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


# --- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize("url, masked", [
    ("https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/***"),
    ("http://user:pw@127.0.0.1:8080/hook?token=abc", "http://127.0.0.1:8080/***"),
    ("https://[::1]:9/x", "https://[::1]:9/***"),
    ("not a url", "***"),
    ("http://[broken/x", "***"),
])
def test_mask_url(url, masked):
    assert n.mask_url(url) == masked


def test_scrub_removes_url_path_query_and_values():
    url = "https://hooks.example.com/hooks/T0/B0/s3cretpath?token=qwerty123"
    secrets = n.secret_parts(url, ["Bearer tok-abcdef", "ab"])
    text = "failed %s, path /hooks/T0/B0/s3cretpath, q token=qwerty123, header Bearer tok-abcdef, ab ok" % url
    out = n.scrub(text, secrets)
    assert "s3cret" not in out and "qwerty" not in out and "tok-abcdef" not in out
    assert out.endswith("ab ok")


# --- sending over HTTP (a server on 127.0.0.1) ---------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    def do_POST(self):
        server = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server.requests.append((self.path, dict(self.headers), body))
        status, headers, text = server.answers[min(len(server.requests), len(server.answers)) - 1]
        if status is None:      # close the connection without an answer
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if status == "slow":
            time.sleep(1.5)
            status = 200
        if status == "together":   # answer only once the other request has arrived too
            try:
                server.barrier.wait(timeout=3)
                status = 200
            except threading.BrokenBarrierError:
                status = 504
        payload = text.replace("{path}", self.path).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.requests = []
    server.answers = [(200, {}, "ok")]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url_of(server, path="/hooks/T0/B0/s3cretpath"):
    return "http://127.0.0.1:%d%s" % (server.server_address[1], path)


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def no_sleep(seconds):
    pass


def test_post_json_sends_json_and_headers(http_server):
    d = n.post_json("webhook", url_of(http_server), {"a": 1}, headers={"Authorization": "Bearer tok-123456"},
                    sleep=no_sleep)
    assert (d.sent, d.error, d.detail, d.attempts) == (True, None, "HTTP 200", 1)
    assert d.target == "http://127.0.0.1:%d/***" % http_server.server_address[1]
    path, headers, body = http_server.requests[0]
    assert path == "/hooks/T0/B0/s3cretpath" and json.loads(body) == {"a": 1}
    assert headers["Content-Type"] == "application/json" and headers["Authorization"] == "Bearer tok-123456"
    assert headers["User-Agent"] == n.USER_AGENT


def test_post_json_retries_a_5xx_once_and_scrubs_the_echoed_path(http_server):
    http_server.answers = [(500, {}, "no route for {path}")]
    d = n.post_json("slack", url_of(http_server), {}, sleep=no_sleep)
    assert not d.sent and d.attempts == 2 and len(http_server.requests) == 2
    assert d.error == "HTTP 500 (no route for ***) after 2 attempts"


def test_post_json_5xx_then_success(http_server):
    http_server.answers = [(503, {}, ""), (200, {}, "ok")]
    d = n.post_json("slack", url_of(http_server), {}, sleep=no_sleep)
    assert (d.sent, d.attempts, d.error) == (True, 2, None)


def test_post_json_does_not_retry_a_4xx(http_server):
    http_server.answers = [(404, {}, "no_service")]
    d = n.post_json("slack", url_of(http_server), {}, sleep=no_sleep)
    assert (d.sent, d.attempts, d.error) == (False, 1, "HTTP 404 (no_service)")


def test_post_json_honours_retry_after_of_a_429(http_server):
    http_server.answers = [(429, {"Retry-After": "0.2"}, "rate_limited"), (200, {}, "ok")]
    waits = []
    d = n.post_json("slack", url_of(http_server), {}, retry_delay=5, sleep=waits.append)
    assert d.sent and waits == [0.2]


def test_post_json_does_not_follow_redirects(http_server):
    http_server.answers = [(302, {"Location": "http://127.0.0.1:9/elsewhere"}, "")]
    d = n.post_json("webhook", url_of(http_server), {}, sleep=no_sleep)
    assert d.error == "HTTP 302 (redirects are not followed; give the final URL)" and d.attempts == 1


def test_post_json_connection_refused_is_retried_once():
    waits = []
    url = "http://127.0.0.1:%d/hooks/secretpath" % closed_port()
    d = n.post_json("webhook", url, {}, retry_delay=0.5, sleep=waits.append)
    assert (d.sent, d.attempts, d.error, waits) == (False, 2, "connection refused after 2 attempts", [0.5])
    assert "secretpath" not in repr(d.as_dict())


def test_post_json_no_answer_and_timeout(http_server):
    http_server.answers = [(None, {}, "")]
    d = n.post_json("webhook", url_of(http_server), {}, retries=0, sleep=no_sleep)
    assert d.error in ("connection closed without an answer", "connection reset")
    http_server.answers = [("slow", {}, "ok")]
    d = n.post_json("webhook", url_of(http_server), {}, retries=0, timeout=0.3, sleep=no_sleep)
    assert d.error == "timed out after 0.3 s"


@pytest.mark.parametrize("url", ["ftp://host/x", "hooks.slack.com/services/x", "", "http:///nohost"])
def test_post_json_rejects_urls_that_are_not_http(url):
    d = n.post_json("webhook", url, {}, sleep=no_sleep)
    assert d.error.startswith("the URL is not an http or https URL") and d.attempts == 0
    assert "services" not in d.error and "nohost" not in d.error


def test_post_json_rejects_header_injection(http_server):
    d = n.post_json("webhook", url_of(http_server), {}, headers={"X-Token": "abc\r\nX-Evil: 1"}, sleep=no_sleep)
    assert d.error == "header X-Token has a line break in its name or value" and not http_server.requests


def test_post_json_https_to_a_plain_server_is_a_tls_error(http_server):
    d = n.post_json("webhook", url_of(http_server).replace("http://", "https://"), {}, retries=0, sleep=no_sleep)
    assert d.error.startswith("TLS error") and "s3cretpath" not in d.error


# --- sending over SMTP (aiosmtpd on 127.0.0.1) ---------------------------------------------


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            return "250 Message accepted for delivery"

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("nobody@"):
                return "550 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    handler = Handler()
    handler.port = closed_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


def test_send_email_delivers_the_message(smtp_server):
    msg = n.email_message(full_event(), "deploy@example.com", ["ops@example.com", "nobody@example.com"])
    d = n.send_email(msg, "127.0.0.1", port=smtp_server.port, sleep=no_sleep)
    assert d.sent and d.error is None and d.target == "smtp://127.0.0.1:%d" % smtp_server.port
    assert d.detail == "accepted for 1 recipient; refused: nobody@example.com"
    mail_from, rcpts, content = smtp_server.messages[0]
    assert mail_from == "deploy@example.com" and rcpts == ["ops@example.com"]
    received = message_from_bytes(content, policy=policy.default)
    assert received["Subject"] == msg["Subject"]
    assert "Status:        rolled_back" in received.get_content()


def test_send_email_all_recipients_refused(smtp_server):
    msg = n.email_message(minimal_event(), "deploy@example.com", ["nobody@example.com"])
    d = n.send_email(msg, "127.0.0.1", port=smtp_server.port, sleep=no_sleep)
    assert (d.sent, d.error, d.attempts) == (False, "every recipient refused (550)", 1)


def test_send_email_login_on_a_plain_connection_says_what_to_set(smtp_server):
    msg = n.email_message(minimal_event(), "deploy@example.com", ["ops@example.com"])
    d = n.send_email(msg, "127.0.0.1", port=smtp_server.port, user="deploy", password="hunter2-secret", sleep=no_sleep)
    assert d.error == "the server offers no login on this connection (set smtp_starttls or smtp_ssl)"
    assert not smtp_server.messages


def test_send_email_starttls_not_offered(smtp_server):
    msg = n.email_message(minimal_event(), "deploy@example.com", ["ops@example.com"])
    d = n.send_email(msg, "127.0.0.1", port=smtp_server.port, starttls=True, sleep=no_sleep)
    assert d.error == "the server does not offer STARTTLS"


def test_send_email_refused_connection_retries_once():
    msg = n.email_message(minimal_event(), "deploy@example.com", ["ops@example.com"])
    d = n.send_email(msg, "127.0.0.1", port=closed_port(), password="hunter2-secret", sleep=no_sleep)
    assert (d.sent, d.attempts, d.error) == (False, 2, "connection refused after 2 attempts")


@pytest.mark.parametrize("ssl_, starttls, port", [(True, False, 465), (False, True, 587), (False, False, 25)])
def test_send_email_default_ports(monkeypatch, ssl_, starttls, port):
    seen = []

    def refuse(*args, **kwargs):
        seen.append(args[1])
        raise ConnectionRefusedError()

    monkeypatch.setattr(n.smtplib, "SMTP", refuse)
    monkeypatch.setattr(n.smtplib, "SMTP_SSL", refuse)
    d = n.send_email(n.email_message(minimal_event(), "a@b", ["c@d"]), "mail", use_ssl=ssl_, starttls=starttls,
                     retries=0, sleep=no_sleep)
    assert seen == [port] and d.target.endswith("://mail:%d" % port)


# --- step summary file ---------------------------------------------------------------------


def test_append_summary_appends_with_a_blank_line(tmp_path):
    path = tmp_path / "summary.md"
    path.write_text("# Earlier step\n")
    d = n.append_summary(str(path), "### A\n")
    assert d.sent and path.read_text() == "# Earlier step\n\n### A\n"
    fresh = tmp_path / "fresh.md"
    assert n.append_summary(str(fresh), "### B\n").sent and fresh.read_text() == "### B\n"


def test_append_summary_missing_folder_is_an_error(tmp_path):
    d = n.append_summary(str(tmp_path / "nope" / "s.md"), "x\n")
    assert not d.sent and d.error == "cannot append to %s: No such file or directory" % (tmp_path / "nope" / "s.md")


# --- the whole run -------------------------------------------------------------------------


def test_run_with_nothing_configured_sends_nothing():
    res = n.run({"event": {"deployment_id": "d", "status": "failed"}}, environ={})
    assert res["channels"] == [] and res["notifications"] == [] and res["changed"] is False


def test_run_sends_every_channel_and_reads_github_step_summary(http_server, smtp_server, tmp_path):
    summary = tmp_path / "summary.md"
    params = {"event": {"deployment_id": "d", "status": "rollback_failed"},
              "slack_webhook_url": url_of(http_server, "/slack/T/B/x1y2z3"), "webhook_url": url_of(http_server, "/hook/abc"),
              "email_to": ["ops@example.com"], "smtp_host": "127.0.0.1", "smtp_port": smtp_server.port,
              "email_from": "d@example.com"}
    res = n.run(params, environ={"GITHUB_STEP_SUMMARY": str(summary)}, sleep=no_sleep)
    assert res["channels"] == ["slack", "webhook", "email", "step_summary"]
    assert res["sent"] == res["channels"] and res["failed_channels"] == [] and res["changed"] is True
    assert sorted(r[0] for r in http_server.requests) == ["/hook/abc", "/slack/T/B/x1y2z3"]
    assert len(smtp_server.messages) == 1
    assert summary.read_text().startswith("### \U0001f6a8 Deployment failed and its rollback failed")
    assert "x1y2z3" not in json.dumps(res) and "/hook/abc" not in json.dumps(res)


def test_run_step_summary_off_or_explicit(tmp_path):
    env = {"GITHUB_STEP_SUMMARY": str(tmp_path / "env.md")}
    res = n.run({"event": {"deployment_id": "d", "status": "success"}, "step_summary": False}, environ=env)
    assert res["channels"] == [] and not (tmp_path / "env.md").exists()
    res = n.run({"event": {"deployment_id": "d", "status": "success"}, "step_summary_path": str(tmp_path / "own.md")},
                environ=env)
    assert res["sent"] == ["step_summary"] and (tmp_path / "own.md").exists() and not (tmp_path / "env.md").exists()


def test_run_emails_a_success_only_when_asked(smtp_server):
    params = {"event": {"deployment_id": "d", "status": "success"}, "email_to": ["ops@example.com"],
              "smtp_host": "127.0.0.1", "smtp_port": smtp_server.port}
    res = n.run(params, environ={})
    mail = res["notifications"][0]
    assert (mail["sent"], mail["skipped"], mail["error"]) == (False, True, None)
    assert mail["detail"].startswith("not sent: only failed, rolled_back, rollback_failed deployments are e-mailed")
    assert res["would_send"] == [] and res["changed"] is False and not smtp_server.messages
    res = n.run(dict(params, email_always=True), environ={})
    assert res["sent"] == ["email"] and len(smtp_server.messages) == 1


def test_run_check_mode_sends_nothing(http_server, tmp_path):
    params = {"event": {"deployment_id": "d", "status": "success"}, "slack_webhook_url": url_of(http_server),
              "webhook_url": url_of(http_server), "email_to": ["ops@example.com"],
              "step_summary_path": str(tmp_path / "s.md")}
    res = n.run(params, check_mode=True, environ={})
    assert res["would_send"] == ["slack", "webhook", "step_summary"] and res["sent"] == []
    assert res["changed"] is True
    assert [(x["channel"], x["sent"], x["skipped"]) for x in res["notifications"]] == [
        ("slack", False, False), ("webhook", False, False), ("email", False, True), ("step_summary", False, False)]
    assert not http_server.requests and not (tmp_path / "s.md").exists()


def test_run_failures_become_warnings_without_secrets(http_server):
    http_server.answers = [(500, {}, "boom at {path}")]
    params = {"event": {"deployment_id": "deploy-9", "status": "failed"},
              "slack_webhook_url": "http://127.0.0.1:%d/services/T/B/slacksecret" % closed_port(),
              "webhook_url": url_of(http_server, "/hook/webhooksecret"), "webhook_headers": {"X-Token": "headersecret"},
              "retry_delay": 0}
    res = n.run(params, environ={})
    assert res["failed_channels"] == ["slack", "webhook"] and res["changed"] is False
    warnings = n.warnings_for(res)
    assert warnings == [
        "slack notification failed: connection refused after 2 attempts (deployment deploy-9 stays failed; "
        "the notification does not change that)",
        "webhook notification failed: HTTP 500 (boom at ***) after 2 attempts (deployment deploy-9 stays failed; "
        "the notification does not change that)",
    ]
    assert n.failure_message(res) == ("notification failed: slack: connection refused after 2 attempts; "
                                      "webhook: HTTP 500 (boom at ***) after 2 attempts")
    text = json.dumps(res) + "".join(warnings)
    for secret in ("slacksecret", "webhooksecret", "headersecret"):
        assert secret not in text


def test_run_channels_go_out_at_the_same_time(http_server):
    # The server answers a request only while the other one is in flight too: sent one after
    # the other, the first would get 504 and no retry.
    http_server.answers = [("together", {}, "ok")]
    http_server.barrier = threading.Barrier(2)
    params = {"event": {"deployment_id": "d", "status": "failed"}, "slack_webhook_url": url_of(http_server, "/a"),
              "webhook_url": url_of(http_server, "/b"), "retries": 0}
    res = n.run(params, environ={})
    assert res["sent"] == ["slack", "webhook"], res["notifications"]


@pytest.mark.parametrize("params, message", [
    ({"timeout": 0}, "timeout must be more than 0 seconds"),
    ({"retries": -1}, "retries and retry_delay must not be negative"),
])
def test_run_bad_numbers(params, message):
    with pytest.raises(n.NotifyInputError, match=message):
        n.run(dict({"event": {"deployment_id": "d", "status": "failed"}}, **params), environ={})


# --- announcements -------------------------------------------------------------------------


def announcement(**over):
    ann = {"kind": "maintenance_start", "text": "The dashboard is read-only until 22:00 UTC.\nIngestion goes on."}
    ann.update(over.pop("announcement", {}))
    raw = {"announcement": ann, "project": "homeiq", "environment": "prod", "timestamp": "2025-11-26T10:15:00Z"}
    raw.update(over)
    return n.build_event(raw, repository="org/homeiq", workflow_run_id="4242",
                         workflow_url="https://github.com/org/homeiq/actions/runs/4242",
                         commit_url="https://github.com/org/homeiq/commit/{commit}")


@pytest.mark.parametrize("kind, headline, severity", [
    ("maintenance_start", "Maintenance started", "warning"),
    ("maintenance_end", "Maintenance ended", "info"),
    ("incident", "Incident", "critical"),
    ("incident_resolved", "Incident resolved", "info"),
    ("notice", "Notice", "info"),
])
def test_an_announcement_takes_its_title_and_severity_from_its_kind(kind, headline, severity):
    ev = announcement(announcement={"kind": kind})
    assert ev.deployment_id is None and ev.status is None and ev.rollout is None
    assert ev.announcement == {"kind": kind, "title": headline, "severity": severity,
                               "message": "The dashboard is read-only until 22:00 UTC.\nIngestion goes on."}
    assert n.title(ev) == "%s: homeiq in prod" % headline


def test_an_announcement_title_and_severity_can_be_given_and_scope_is_optional():
    ev = announcement(announcement={"kind": "incident", "title": "Ingestion stalled", "severity": "warning"},
                      project=None, environment="", host="homeiq-1")
    assert n.title(ev) == "Ingestion stalled: homeiq-1" and ev.announcement["severity"] == "warning"
    ev = announcement(project="", environment=None)
    assert n.title(ev) == "Maintenance started"


@pytest.mark.parametrize("over, message", [
    ({"announcement": {"kind": "maintenance"}},
     "announcement kind 'maintenance' is not one of maintenance_start, maintenance_end, incident, incident_resolved, notice"),
    ({"announcement": {"kind": ""}}, "announcement kind '' is not one of maintenance_start"),
    ({"announcement": {"text": "   "}}, "announcement text is empty: say what is happening"),
    ({"announcement": {"text": None}}, "announcement text is empty"),
    ({"announcement": {"severity": "high"}}, "announcement severity 'high' is not one of info, warning, critical"),
    ({"status": "success"}, "event.status is set on an announcement"),
    ({"rollout": {"status": "success"}}, "event.rollout is set on an announcement"),
    ({"timestamp": "soon"}, "event.timestamp 'soon' is not an ISO 8601 time"),
])
def test_bad_announcements_are_one_line_errors(over, message):
    with pytest.raises(n.NotifyInputError) as info:
        announcement(**over)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_an_announcement_must_be_a_dict():
    with pytest.raises(n.NotifyInputError, match="^event.announcement must be a dict"):
        n.build_event({"announcement": "maintenance"})


def test_announcement_slack_payload():
    assert n.slack_payload(announcement()) == {
        "text": ":construction: *Maintenance started: homeiq in prod*",
        "attachments": [{
            "color": "warning",
            "text": "The dashboard is read-only until 22:00 UTC.\nIngestion goes on.",
            "fields": [
                {"title": "Kind", "value": "maintenance_start", "short": True},
                {"title": "Severity", "value": "warning", "short": True},
                {"title": "Project", "value": "homeiq", "short": True},
                {"title": "Environment", "value": "prod", "short": True},
                {"title": "Workflow", "value": "<https://github.com/org/homeiq/actions/runs/4242|run 4242>", "short": True},
            ],
            "footer": "homeiq.deploy",
            "ts": 1764152100,
        }],
    }
    critical = n.slack_payload(announcement(announcement={"kind": "incident", "text": "a <b> & c"}))
    assert critical["text"] == ":rotating_light: *Incident: homeiq in prod*"
    assert critical["attachments"][0]["color"] == "danger" and critical["attachments"][0]["text"] == "a &lt;b&gt; &amp; c"
    assert n.slack_payload(announcement(announcement={"kind": "notice"}))["attachments"][0]["color"] == "#439FE0"


def test_announcement_webhook_payload():
    assert n.webhook_payload(announcement()) == {
        "kind": "announcement", "announcement": "maintenance_start", "severity": "warning",
        "title": "Maintenance started", "message": "The dashboard is read-only until 22:00 UTC.\nIngestion goes on.",
        "project": "homeiq", "environment": "prod", "host": None, "repository": "org/homeiq",
        "workflow_run_id": "4242", "workflow_url": "https://github.com/org/homeiq/actions/runs/4242",
        "timestamp": "2025-11-26T10:15:00Z",
    }


def test_announcement_email_and_step_summary():
    ev = announcement(announcement={"kind": "maintenance_end", "text": "Back to normal."})
    msg = n.email_message(ev, "deploy@example.com", ["users@example.com"])
    assert msg["Subject"] == "[info] Maintenance ended: homeiq in prod"
    assert (msg["X-HomeIQ-Announcement"], msg["X-HomeIQ-Severity"]) == ("maintenance_end", "info")
    assert msg["X-HomeIQ-Deployment-ID"] is None
    assert msg.get_content().splitlines() == [
        "Maintenance ended: homeiq in prod", "", "Back to normal.", "",
        "Kind:        maintenance_end", "Severity:    info", "Project:     homeiq", "Environment: prod",
        "Repository:  org/homeiq", "Workflow:    run 4242 (https://github.com/org/homeiq/actions/runs/4242)",
        "Time:        2025-11-26T10:15:00Z", "", "-- ", "Sent by homeiq.deploy."]
    assert n.step_summary_markdown(ev).splitlines()[:6] == [
        "### \u2139\ufe0f Maintenance ended: homeiq in prod", "", "Back to normal.", "", "| | |", "| --- | --- |"]
    assert "| Kind | `maintenance_end` |" in n.step_summary_markdown(ev)
    assert n.step_summary_markdown(announcement()).startswith("### \U0001f6a7 Maintenance started: homeiq in prod\n")


def test_run_announces_on_every_channel_and_always_emails(http_server, smtp_server, tmp_path):
    params = {"event": {"announcement": {"kind": "incident", "text": "Ingestion is down."}, "environment": "prod"},
              "webhook_url": url_of(http_server, "/hook/abc"), "email_to": ["ops@example.com"],
              "smtp_host": "127.0.0.1", "smtp_port": smtp_server.port, "email_from": "d@example.com",
              "step_summary_path": str(tmp_path / "s.md")}
    res = n.run(params, environ={})
    assert res["sent"] == ["webhook", "email", "step_summary"] and res["failed_channels"] == []
    assert (res["title"], res["status"], res["deployment_id"]) == ("Incident: prod", None, None)
    assert json.loads(http_server.requests[0][2])["announcement"] == "incident"
    assert len(smtp_server.messages) == 1 and b"Ingestion is down." in smtp_server.messages[0][2]


def test_a_failed_announcement_channel_warns_without_a_deployment():
    params = {"event": {"announcement": {"kind": "notice", "text": "x"}}, "retries": 0,
              "webhook_url": "http://127.0.0.1:%d/hook/secretsecret" % closed_port()}
    res = n.run(params, environ={})
    assert n.warnings_for(res) == ["webhook notification failed: connection refused "
                                   "(the announcement did not reach this channel)"]
    assert n.failure_message(res) == "notification failed: webhook: connection refused"
