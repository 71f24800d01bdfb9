"""The notify role through real ansible-playbook runs: an HTTP server on 127.0.0.1 receives the
Slack and webhook payloads, a real SMTP server (aiosmtpd, STARTTLS and login) the failure
e-mail, a file stands in for $GITHUB_STEP_SUMMARY; notifiers that are down only warn; check mode
sends nothing; -vvv with the invocation injected shows no secret."""
from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import uuid
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SHA = "3f5c2a9d0e4b8c7a6f1e2d3c4b5a69788796a5b4"
TIMESTAMP = "2025-11-26T10:15:00Z"
TS = 1764152100
# CI variables of the machine running the tests must not leak into the payloads.
CLEAN_ENV = {name: "" for name in (
    "GITHUB_STEP_SUMMARY", "GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_SERVER_URL", "HOMEIQ_SLACK_WEBHOOK_URL",
    "HOMEIQ_WEBHOOK_URL", "HOMEIQ_WEBHOOK_TOKEN", "HOMEIQ_NOTIFY_EMAIL_TO", "HOMEIQ_SMTP_HOST", "HOMEIQ_SMTP_USER",
    "HOMEIQ_SMTP_PASSWORD")}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- an HTTP server for Slack and the webhook ------------------------------------------------


class Hooks(BaseHTTPRequestHandler):
    """200 `ok` for any path; 500 for paths under /fail, echoing the path and the
    Authorization header, as a careless server might (the module must not repeat them)."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.path.startswith("/fail"):
            status, text = 500, "internal error at %s for %s" % (self.path, self.headers.get("Authorization"))
        else:
            status, text = 200, "ok"
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class HookServer:
    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
        self.server.received = []
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def received(self, prefix):
        return [r for r in self.server.received if r["path"].startswith(prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    server = HookServer()
    yield server
    server.close()


# --- a real SMTP server with STARTTLS and login ---------------------------------------------


def make_tls(tmp_path):
    """A CA and a server certificate for 127.0.0.1 and localhost; returns (ca file, cert file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def build(subject, issuer, key, signer, ca, sans=None):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if ca:
            b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                              content_commitment=False, key_encipherment=False, data_encipherment=False,
                                              key_agreement=False, encipher_only=False, decipher_only=False),
                                critical=True)
        else:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            b = b.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "homeiq test CA")])
    ca = build(ca_name, ca_name, ca_key, ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), ca_name, key, ca_key, False,
                 [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    paths = tmp_path / "ca.pem", tmp_path / "smtp.pem", tmp_path / "smtp.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return tuple(str(p) for p in paths)


class Mailbox:
    def __init__(self):
        self.messages = []
        self.logins = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "message": message_from_bytes(envelope.content, policy=policy.default),
                              "tls": session.ssl is not None, "authenticated": session.authenticated})
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(tmp_path):
    """aiosmtpd on 127.0.0.1 that requires STARTTLS and a login (user `deploy`)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    ca_file, cert_file, key_file = make_tls(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    box = Mailbox()
    box.password = "smtp-pw-" + uuid.uuid4().hex[:10]
    box.ca_file = ca_file

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"deploy" and auth_data.password == box.password.encode()
        box.logins.append((auth_data.login, ok))
        return AuthResult(success=ok)

    box.port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=box.port, tls_context=tls, require_starttls=True,
                            authenticator=authenticator, auth_required=True)
    controller.start()
    yield box
    controller.stop()


# --- running the role -----------------------------------------------------------------------


def write_play(tmp_path, role_vars, after=None, inventory_vars=None):
    tasks = [{"name": "Notify", "ansible.builtin.include_role": {"name": "homeiq.deploy.notify"}, "vars": role_vars}]
    tasks += after or []
    play = {"name": "notify", "hosts": "localhost", "gather_facts": False, "tasks": tasks}
    if inventory_vars:
        play["vars"] = inventory_vars
    path = Path(tmp_path) / ("play-%s.yml" % uuid.uuid4().hex[:6])
    path.write_text(yaml.safe_dump([play], sort_keys=False))
    return path


def notify_record(run):
    return run.task("Send the deployment notification")


def notify_result(run):
    return notify_record(run)["result"]


def event(**over):
    ev = {"deployment_id": "deploy-20251126-101500", "status": "rolled_back", "commit": SHA, "branch": "main",
          "project": "homeiq", "environment": "prod", "host": "homeiq-1",
          "failing_checks": ["data-api: HTTP 503", {"name": "admin-api", "error": "connection refused",
                                                    "critical": True}],
          "rollback": {"to": "deploy-20251125-090000", "status": "success"},
          "report_path": "/var/lib/homeiq/reports/deploy-20251126-101500/health.json",
          "notes": "logs: /var/lib/homeiq/reports/deploy-20251126-101500/logs", "timestamp": TIMESTAMP}
    ev.update(over)
    return ev


def all_channels(hooks, smtp, summary, **over):
    v = {
        "notify_event": event(),
        "notify_slack_webhook_url": hooks.url("/services/T0001/B0001/slackslackslack"),
        "notify_webhook_url": hooks.url("/hooks/deployments/hookhookhook"),
        "notify_webhook_headers": {"Authorization": "Bearer tok-" + uuid.uuid4().hex[:12]},
        "notify_email_to": ["oncall@example.com", "ops@example.com"],
        "notify_email_from": "homeiq-deploy@example.com",
        "notify_email_smtp_host": "127.0.0.1",
        "notify_email_smtp_port": smtp.port,
        "notify_email_smtp_starttls": True,
        "notify_email_smtp_user": "deploy",
        "notify_email_smtp_password": smtp.password,
        "notify_step_summary_path": str(summary),
        "notify_commit_url": "https://github.com/org/homeiq/commit/{commit}",
        "notify_workflow_url": "https://github.com/org/homeiq/actions/runs/4242",
        "notify_workflow_run_id": "4242",
        "notify_repository": "org/homeiq",
        "notify_retry_delay": 0.2,
    }
    v.update(over)
    return v


def env_for(smtp=None, **extra):
    env = dict(CLEAN_ENV)
    if smtp is not None:
        env["SSL_CERT_FILE"] = smtp.ca_file     # the SMTP server's CA; certificates are verified
    env.update(extra)
    return env


SLACK_ROLLED_BACK = {
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
            {"title": "Notes", "value": "logs: /var/lib/homeiq/reports/deploy-20251126-101500/logs", "short": False},
        ],
        "footer": "homeiq.deploy",
        "ts": TS,
    }],
}

WEBHOOK_ROLLED_BACK = {
    "deployment_id": "deploy-20251126-101500", "status": "rolled_back", "commit": SHA, "branch": "main",
    "repository": "org/homeiq", "environment": "prod", "host": "homeiq-1", "project": "homeiq",
    "timestamp": TIMESTAMP, "failing_checks": ["data-api: HTTP 503", "admin-api: connection refused"],
    "rollback": {"to": "deploy-20251125-090000", "status": "success"}, "workflow_run_id": "4242",
    "workflow_url": "https://github.com/org/homeiq/actions/runs/4242",
    "report_path": "/var/lib/homeiq/reports/deploy-20251126-101500/health.json",
    "notes": "logs: /var/lib/homeiq/reports/deploy-20251126-101500/logs", "rollout": None,
}


# --- cases ----------------------------------------------------------------------------------


def test_a_rolled_back_deployment_reaches_every_channel(playbook, tmp_path, hooks, smtp):
    summary = tmp_path / "step-summary.md"
    summary.write_text("## Build\n\nbuilt 7 images\n")
    role_vars = all_channels(hooks, smtp, summary)
    run = playbook(write_play(tmp_path, role_vars), env=env_for(smtp))
    assert run.rc == 0, run.output[-3000:]
    assert notify_record(run)["status"] == "ok"
    r = notify_result(run)
    assert r["changed"] is True and r["sent"] == ["slack", "webhook", "email", "step_summary"]
    assert r["failed_channels"] == [] and not r.get("warnings")
    assert [(n["channel"], n["sent"], n["error"], n["attempts"]) for n in r["notifications"]] == [
        ("slack", True, None, 1), ("webhook", True, None, 1), ("email", True, None, 1), ("step_summary", True, None, 1)]

    slack = hooks.received("/services/")
    assert len(slack) == 1 and slack[0]["path"] == "/services/T0001/B0001/slackslackslack"
    assert slack[0]["headers"]["Content-Type"] == "application/json"
    assert json.loads(slack[0]["body"]) == SLACK_ROLLED_BACK

    hook = hooks.received("/hooks/")
    assert len(hook) == 1
    assert hook[0]["headers"]["Authorization"] == role_vars["notify_webhook_headers"]["Authorization"]
    assert json.loads(hook[0]["body"]) == WEBHOOK_ROLLED_BACK

    assert len(smtp.messages) == 1 and smtp.logins == [(b"deploy", True)]
    mail = smtp.messages[0]
    assert mail["tls"] is True and mail["from"] == "homeiq-deploy@example.com"
    assert mail["to"] == ["oncall@example.com", "ops@example.com"]
    msg = mail["message"]
    assert msg["Subject"] == "Deployment failed and was rolled back: homeiq to prod on homeiq-1 (deploy-20251126-101500)"
    assert msg["X-HomeIQ-Deployment-Status"] == "rolled_back"
    body = msg.get_content()
    for line in ("Deployment ID: deploy-20251126-101500", "Status:        rolled_back", "Host:          homeiq-1",
                 "Commit:        %s (https://github.com/org/homeiq/commit/%s)" % (SHA, SHA),
                 "Rollback:      to: deploy-20251125-090000, status: success",
                 "  - data-api: HTTP 503", "  - admin-api: connection refused"):
        assert line in body.splitlines(), line

    text = summary.read_text()
    assert text.startswith("## Build\n\nbuilt 7 images\n\n### \u26a0\ufe0f Deployment failed and was rolled back: "
                           "homeiq to prod on homeiq-1\n")
    assert "| Commit | [`3f5c2a9d0e4b`](https://github.com/org/homeiq/commit/%s) |" % SHA in text
    assert "**Failing checks**\n\n- data-api: HTTP 503\n- admin-api: connection refused\n" in text

    shown = run.task("Notifications")["result"]["msg"]
    assert shown == ["slack: sent (HTTP 200)", "webhook: sent (HTTP 200)",
                     "email: sent (accepted for 2 recipients)", "step_summary: sent (appended 25 lines)"]


def test_a_rollout_is_announced_once_for_the_fleet(playbook, tmp_path, hooks, smtp):
    """deploy.yml's rollout summary through the role: no status given (the rollout implies it), no
    host shown, the hosts listed by outcome on every channel, the webhook carrying the whole rollout."""
    summary = tmp_path / "summary.md"
    rollout = {"deployment_id": "deploy-20261127-041502-k2m9", "status": "reverted", "updated": [], "unchanged": [],
               "failed": {"h2": "rolled_back"}, "reverted": ["h1"], "revert_failed": {}, "not_started": ["h3"],
               "unreachable": [], "batches": [["h1"], ["h2"]],
               "stopped": {"batch": 2, "hosts": ["h2"], "failed": ["h2"], "percentage": 100.0}}
    role_vars = all_channels(hooks, smtp, summary, notify_host="", notify_event={
        "deployment_id": rollout["deployment_id"], "rollout": rollout, "project": "homeiq", "environment": "prod",
        "commit": SHA, "branch": "main", "timestamp": TIMESTAMP})
    run = playbook(write_play(tmp_path, role_vars), env=env_for(smtp))
    assert run.rc == 0, run.output[-3000:]
    r = notify_result(run)
    assert r["status"] == "rolled_back" and r["sent"] == ["slack", "webhook", "email", "step_summary"], r
    headline = "Rollout stopped and the fleet was reverted: homeiq to prod on 3 hosts"
    assert r["title"] == headline
    slack = json.loads(hooks.received("/services/")[0]["body"])
    assert slack["text"] == ":warning: *%s*" % headline
    fields = {f["title"]: f["value"] for f in slack["attachments"][0]["fields"]}
    assert "Host" not in fields and fields["Status"] == "reverted"
    assert fields["Hosts"].splitlines() == ["\u2022 stopped at batch 2: 1 of 1 hosts failed (100.0%)",
                                            "\u2022 failed: h2 (rolled back)", "\u2022 reverted to their previous images: h1",
                                            "\u2022 not started: h3"]
    hook = hooks.received("/hooks/")
    assert len(hook) == 1
    body = json.loads(hook[0]["body"])
    assert (body["deployment_id"], body["status"], body["host"]) == (rollout["deployment_id"], "rolled_back", None)
    assert body["rollout"] == rollout
    assert len(smtp.messages) == 1
    assert smtp.messages[0]["message"]["Subject"] == "%s (%s)" % (headline, rollout["deployment_id"])
    assert "  - reverted to their previous images: h1" in smtp.messages[0]["message"].get_content().splitlines()
    assert "**Hosts**\n\n- stopped at batch 2: 1 of 1 hosts failed (100.0%)\n" in summary.read_text()


def test_a_success_fills_scope_from_the_inventory_and_is_not_emailed(playbook, tmp_path, hooks, smtp):
    summary = tmp_path / "summary.md"
    role_vars = all_channels(hooks, smtp, summary, notify_event={"deployment_id": "deploy-20251126-120000",
                                                                 "status": "success", "commit": "v1.4.2",
                                                                 "timestamp": TIMESTAMP},
                             notify_commit_url="", notify_workflow_url="", notify_workflow_run_id="",
                             notify_repository="")
    run = playbook(write_play(tmp_path, role_vars), env=env_for(smtp))
    assert run.rc == 0, run.output[-3000:]
    r = notify_result(run)
    assert r["sent"] == ["slack", "webhook", "step_summary"] and r["would_send"] == ["slack", "webhook", "step_summary"]
    mail = [n for n in r["notifications"] if n["channel"] == "email"][0]
    assert (mail["sent"], mail["skipped"], mail["error"]) == (False, True, None)
    assert not smtp.messages and not smtp.logins
    # project and environment from inventories/local/group_vars/all/notify.yml, host from the inventory.
    assert json.loads(hooks.received("/services/")[0]["body"]) == {
        "text": ":white_check_mark: *Deployment succeeded: homeiq-demo to local on localhost*",
        "attachments": [{"color": "good", "fields": [
            {"title": "Deployment ID", "value": "deploy-20251126-120000", "short": True},
            {"title": "Status", "value": "success", "short": True},
            {"title": "Commit", "value": "v1.4.2", "short": True},
            {"title": "Environment", "value": "local", "short": True},
            {"title": "Host", "value": "localhost", "short": True},
        ], "footer": "homeiq.deploy", "ts": TS}],
    }
    assert json.loads(hooks.received("/hooks/")[0]["body"]) == {
        "deployment_id": "deploy-20251126-120000", "status": "success", "commit": "v1.4.2", "branch": None,
        "repository": None, "environment": "local", "host": "localhost", "project": "homeiq-demo",
        "timestamp": TIMESTAMP, "failing_checks": [], "rollback": None, "workflow_run_id": None, "workflow_url": None,
        "report_path": None, "notes": None, "rollout": None,
    }
    assert summary.read_text().startswith("### \u2705 Deployment succeeded: homeiq-demo to local on localhost\n")


def test_notifiers_that_are_down_warn_and_the_deployment_outcome_stands(playbook, tmp_path, hooks):
    summary = tmp_path / "summary.md"
    token = "Bearer tok-" + uuid.uuid4().hex[:12]
    role_vars = {
        "notify_event": event(status="failed", rollback=None),
        "notify_slack_webhook_url": "http://127.0.0.1:%d/services/T0001/B0001/downdowndown" % free_port(),
        "notify_webhook_url": hooks.url("/fail/hooks/errorerror"),
        "notify_webhook_headers": {"Authorization": token},
        "notify_email_to": ["oncall@example.com"],
        "notify_email_smtp_host": "127.0.0.1",
        "notify_email_smtp_port": free_port(),
        "notify_step_summary_path": str(summary),
        "notify_retry_delay": 0.2,
    }
    # The play goes on after the notification and then fails with the deployment's own message.
    after = [{"name": "Report the deployment", "ansible.builtin.fail": {
        "msg": "Deployment deploy-20251126-101500 failed: data-api: HTTP 503"}}]
    run = playbook(write_play(tmp_path, role_vars, after=after), env=env_for())
    assert run.rc == 2, run.output[-3000:]
    assert notify_record(run)["status"] == "ok"
    failed = [r for r in run.results if r["status"] == "failed"]
    assert [r["task"] for r in failed] == ["Report the deployment"]
    assert failed[0]["result"]["msg"] == "Deployment deploy-20251126-101500 failed: data-api: HTTP 503"

    r = notify_result(run)
    assert r["sent"] == ["step_summary"] and r["failed_channels"] == ["slack", "webhook", "email"]
    errors = {n["channel"]: (n["error"], n["attempts"]) for n in r["notifications"]}
    assert errors == {
        "slack": ("connection refused after 2 attempts", 2),
        "webhook": ("HTTP 500 (internal error at *** for ***) after 2 attempts", 2),
        "email": ("connection refused after 2 attempts", 2),
        "step_summary": (None, 1),
    }
    assert len(hooks.received("/fail/")) == 2       # one retry after the 500
    warnings = [line for line in run.output.splitlines() if line.startswith("[WARNING]: ")]
    assert len([w for w in warnings if "notification failed" in w]) == 3
    assert ("[WARNING]: webhook notification failed: HTTP 500 (internal error at *** for ***) after 2 attempts "
            "(deployment deploy-20251126-101500 stays failed; the notification does not change that)") in warnings
    assert summary.read_text().startswith("### \u274c Deployment failed: homeiq to prod on homeiq-1\n")
    for secret in ("downdowndown", "errorerror", token.split()[1]):
        assert secret not in run.output
        assert secret not in json.dumps(run.results)


def test_fail_on_error_makes_a_failed_channel_fail_the_play(playbook, tmp_path):
    role_vars = {"notify_event": event(), "notify_fail_on_error": True, "notify_retries": 0,
                 "notify_webhook_url": "http://127.0.0.1:%d/hooks/refusedrefused" % free_port(),
                 "notify_step_summary_path": ""}
    run = playbook(write_play(tmp_path, role_vars), env=env_for())
    assert run.rc == 2
    res = notify_record(run)
    assert res["status"] == "failed"
    assert res["result"]["msg"] == "notification failed: webhook: connection refused"
    assert "refusedrefused" not in run.output


def test_check_mode_sends_nothing_and_each_real_run_sends_again(playbook, tmp_path, hooks, smtp):
    summary = tmp_path / "summary.md"
    summary.write_text("## Earlier step\n")
    play = write_play(tmp_path, all_channels(hooks, smtp, summary))
    channels = ["slack", "webhook", "email", "step_summary"]
    sizes = []
    for round_, check in enumerate((True, False, True, False)):
        run = playbook(play, check=check, env=env_for(smtp))
        assert run.rc == 0, run.output[-3000:]
        r = notify_result(run)
        assert r["changed"] is True, (round_, r)        # a notification is news every time: never idempotent
        assert r["would_send"] == channels
        if check:
            assert r["sent"] == [] and all(n["detail"] == "check mode: would send, nothing sent"
                                           for n in r["notifications"])
            assert run.task("Notifications")["result"]["msg"][0] == "slack: check mode: would send, nothing sent"
        else:
            assert r["sent"] == channels
        sizes.append((len(hooks.received("/services/")), len(hooks.received("/hooks/")), len(smtp.messages),
                      summary.read_text().count("### ")))
    assert sizes == [(0, 0, 0, 0), (1, 1, 1, 1), (1, 1, 1, 1), (2, 2, 2, 2)]


def test_vvv_with_the_invocation_shows_no_secret(playbook, tmp_path, hooks, smtp):
    """The staging inventory's way: secrets from the controller's environment (CI secrets, AWX
    credentials); one webhook answers 500 echoing its path and token back."""
    summary = tmp_path / "summary.md"
    slack_url = hooks.url("/services/T0001/B0001/vvvslackpath")
    webhook_url = hooks.url("/fail/hooks/vvvhookpath")
    token = "tok-" + uuid.uuid4().hex
    env = env_for(smtp, ANSIBLE_INJECT_INVOCATION="1", HOMEIQ_SLACK_WEBHOOK_URL=slack_url,
                  HOMEIQ_WEBHOOK_URL=webhook_url, HOMEIQ_WEBHOOK_TOKEN=token,
                  HOMEIQ_NOTIFY_EMAIL_TO="oncall@example.com, ops@example.com", HOMEIQ_SMTP_HOST="127.0.0.1",
                  HOMEIQ_SMTP_USER="deploy", HOMEIQ_SMTP_PASSWORD=smtp.password)
    # Only the port differs from staging's group_vars (587 there); play vars win over them.
    play = write_play(tmp_path, {"notify_event": event(status="rollback_failed"), "notify_retry_delay": 0.2,
                                 "notify_step_summary_path": str(summary)},
                      inventory_vars={"notify_email_smtp_port": smtp.port})
    run = playbook(play, inventory=REPO / "inventories" / "staging", verbosity=3, env=env)
    assert run.rc == 0, run.output[-3000:]
    r = notify_result(run)
    assert r["sent"] == ["slack", "email", "step_summary"] and r["failed_channels"] == ["webhook"]
    # The secrets were really used...
    assert len(hooks.received("/services/T0001/B0001/vvvslackpath")) == 1
    assert [h["headers"]["Authorization"] for h in hooks.received("/fail/")] == ["Bearer " + token] * 2
    assert smtp.logins == [(b"deploy", True)] and len(smtp.messages) == 1
    assert smtp.messages[0]["message"]["From"] == "homeiq-deploy-staging@example.invalid"
    assert json.loads(hooks.received("/services/")[0]["body"])["attachments"][0]["color"] == "danger"
    # ...the invocation was injected (so masking is what is being tested)...
    args = r["invocation"]["module_args"]
    assert args["slack_webhook_url"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert args["webhook_url"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert args["smtp_password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert args["webhook_headers"] == {"Authorization": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}
    assert "TASK [homeiq.deploy.notify : Send the deployment notification]" in run.output
    assert "invocation" in run.output and "module_args" in run.output
    # ...and neither the -vvv output nor any task result holds them.
    everything = run.output + json.dumps(run.results)
    for secret in ("vvvslackpath", "vvvhookpath", "/services/T0001/B0001", token, smtp.password):
        assert secret not in everything, secret
    assert "http://127.0.0.1:%d/***" % hooks.port in everything


def test_the_local_inventory_has_every_channel_off(playbook, tmp_path):
    run = playbook(write_play(tmp_path, {"notify_event": event()}), env=env_for())
    assert run.rc == 0, run.output[-3000:]
    r = notify_result(run)
    assert r["channels"] == [] and r["changed"] is False
    assert run.task("Notifications")["result"]["msg"] == ["no notification channel configured (see docs/notify.md)"]


def test_a_bad_event_is_reported_and_does_not_fail_the_play(playbook, tmp_path):
    run = playbook(write_play(tmp_path, {"notify_event": {"deployment_id": "deploy-1", "status": "finished",
                                                          "kind": "deploy"}}), env=env_for())
    assert run.rc == 0, run.output[-3000:]
    msg = run.task("Notifications")["result"]["msg"]
    expected = "notification not sent: value of status must be one of: success, failed, rolled_back, rollback_failed, got: finished"
    assert len(msg) == 1 and msg[0].startswith(expected)


# --- notify.yml: manual announcements -------------------------------------------------------


def announce(playbook, kind, message, extra_vars=None, env=None, check=False):
    """`ansible-playbook notify.yml -i inventories/local -e notify_announcement_kind=... -e 'notify_announcement_message="..."'`"""
    args = ["-e", "notify_announcement_kind=%s" % kind, "-e", 'notify_announcement_message="%s"' % message]
    return playbook(REPO / "notify.yml", extra_vars=extra_vars, env=env, check=check, args=args)


def email_vars(smtp, **over):
    v = {"notify_email_to": ["users@example.com"], "notify_email_from": "homeiq-deploy@example.com",
         "notify_email_smtp_host": "127.0.0.1", "notify_email_smtp_port": smtp.port,
         "notify_email_smtp_starttls": True, "notify_email_smtp_user": "deploy",
         "notify_email_smtp_password": smtp.password, "notify_retry_delay": 0.2}
    v.update(over)
    return v


def test_notify_yml_announces_a_maintenance_window_on_the_webhook_and_by_email(playbook, hooks, smtp):
    """The local inventory's webhook (HOMEIQ_WEBHOOK_URL) and an e-mail through a STARTTLS relay with a
    login; check mode first sends nothing, the real run sends once, an announcement is always e-mailed."""
    message = "The dashboard is read-only until 22:00 UTC; ingestion goes on."
    env = env_for(smtp, HOMEIQ_WEBHOOK_URL=hooks.url("/hooks/announce/annsecretpath"))
    run = announce(playbook, "maintenance_start", message, extra_vars=email_vars(smtp), env=env, check=True)
    assert run.rc == 0, run.output[-3000:]
    assert notify_result(run)["would_send"] == ["webhook", "email"] and notify_result(run)["sent"] == []
    assert not hooks.received("/") and not smtp.messages

    run = announce(playbook, "maintenance_start", message, extra_vars=email_vars(smtp), env=env)
    assert run.rc == 0, run.output[-3000:]
    r = notify_result(run)
    assert r["sent"] == ["webhook", "email"] and r["failed_channels"] == [] and r["changed"] is True
    assert (r["title"], r["status"], r["deployment_id"]) == ("Maintenance started: homeiq-demo in local", None, None)
    assert run.task("Notifications")["result"]["msg"] == ["webhook: sent (HTTP 200)",
                                                          "email: sent (accepted for 1 recipient)"]

    hook = hooks.received("/hooks/announce/")
    assert len(hook) == 1 and hook[0]["headers"]["Content-Type"] == "application/json"
    body = json.loads(hook[0]["body"])
    stamp = body.pop("timestamp")
    assert datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
    assert body == {"kind": "announcement", "announcement": "maintenance_start", "severity": "warning",
                    "title": "Maintenance started", "message": message, "project": "homeiq-demo",
                    "environment": "local", "host": None, "repository": None, "workflow_run_id": None,
                    "workflow_url": None}

    assert len(smtp.messages) == 1 and smtp.logins == [(b"deploy", True)]
    mail = smtp.messages[0]
    assert mail["tls"] is True and mail["to"] == ["users@example.com"]
    msg = mail["message"]
    assert msg["Subject"] == "[warning] Maintenance started: homeiq-demo in local"
    assert (msg["X-HomeIQ-Announcement"], msg["X-HomeIQ-Severity"]) == ("maintenance_start", "warning")
    lines = msg.get_content().splitlines()
    assert lines[:3] == ["Maintenance started: homeiq-demo in local", "", message]
    assert "Kind:        maintenance_start" in lines and "Environment: local" in lines
    for secret in ("annsecretpath", smtp.password):
        assert secret not in run.output and secret not in json.dumps(run.results)


def test_notify_yml_an_incident_with_its_own_title_and_severity(playbook, hooks, smtp):
    env = env_for(smtp, HOMEIQ_WEBHOOK_URL=hooks.url("/hooks/incident"))
    run = playbook(REPO / "notify.yml", env=env, extra_vars=email_vars(smtp), args=[
        "-e", "notify_announcement_kind=incident", "-e", 'notify_announcement_message="Events are delayed by 10 minutes."',
        "-e", "notify_announcement_title='Ingestion delayed' notify_announcement_severity=warning"])
    assert run.rc == 0, run.output[-3000:]
    body = json.loads(hooks.received("/hooks/incident")[0]["body"])
    assert (body["announcement"], body["title"], body["severity"], body["message"]) == (
        "incident", "Ingestion delayed", "warning", "Events are delayed by 10 minutes.")
    assert smtp.messages[0]["message"]["Subject"] == "[warning] Ingestion delayed: homeiq-demo in local"


@pytest.mark.parametrize("kind, message, expected", [
    ("maintenance", "Back at 22:00.", "announcement kind 'maintenance' is not one of maintenance_start, maintenance_end, "
                                      "incident, incident_resolved, notice"),
    ("maintenance_end", "", "announcement text is empty: say what is happening and what people should expect"),
])
def test_notify_yml_bad_input_is_one_line_and_sends_nothing(playbook, hooks, kind, message, expected):
    run = announce(playbook, kind, message, env=env_for(HOMEIQ_WEBHOOK_URL=hooks.url("/hooks/bad")))
    assert run.rc == 2, run.output[-3000:]
    failed = [r for r in run.results if r["status"] == "failed"]
    assert [r["task"] for r in failed] == ["homeiq.deploy.notify : Check the announcement"]
    assert failed[0]["result"]["msg"] == expected
    assert "[ERROR]: Task failed: Module failed: %s\n" % expected in run.output
    assert "Traceback" not in run.output
    assert not hooks.received("/")


def test_notify_yml_refuses_an_unquoted_message_with_spaces(playbook, hooks):
    """-e key=value splits at spaces: unquoted, the message would be its first word only."""
    run = playbook(REPO / "notify.yml", env=env_for(HOMEIQ_WEBHOOK_URL=hooks.url("/hooks/unquoted")), args=[
        "-e", "notify_announcement_kind=maintenance_start", "-e", "notify_announcement_message=Read-only until 22:00"])
    assert run.rc == 2, run.output[-3000:]
    failed = [r for r in run.results if r["status"] == "failed"]
    assert [r["task"] for r in failed] == ["homeiq.deploy.notify : Refuse a message cut at its first space"]
    assert failed[0]["result"]["msg"] == (
        "an -e value has words outside quotes (until 22:00), so the message would be cut at its first space: "
        "quote it as -e 'notify_announcement_message=\"The dashboard is read-only until 22:00 UTC.\"'")
    assert not hooks.received("/")


def test_notify_yml_fails_when_no_channel_is_configured_or_a_channel_fails(playbook):
    run = announce(playbook, "notice", "Release notes are out.", env=env_for())
    assert run.rc == 2, run.output[-3000:]
    assert run.task("Fail when no channel is configured")["result"]["msg"] == (
        "announcement not sent: no notification channel is configured in this inventory; set notify_webhook_url, "
        "notify_slack_webhook_url or notify_email_to (docs/notify.md)")

    url = "http://127.0.0.1:%d/hooks/downsecret" % free_port()
    run = announce(playbook, "notice", "Release notes are out.", extra_vars={"notify_retry_delay": 0.2},
                   env=env_for(HOMEIQ_WEBHOOK_URL=url))
    assert run.rc == 2, run.output[-3000:]
    res = notify_record(run)
    assert res["status"] == "failed"
    assert res["result"]["msg"] == "notification failed: webhook: connection refused after 2 attempts"
    assert "downsecret" not in run.output
