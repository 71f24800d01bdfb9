# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment notifications for homeiq.deploy.deploy_notify.

Private to the homeiq.deploy collection: not a public API, may change without notice.

One deployment event goes to every configured channel: a Slack incoming webhook (the
runbook's message), a generic JSON webhook, an e-mail for failures (SMTP) and a Markdown
summary appended to the CI step summary file. An event that carries a rollout (deploy.yml's
summary of a rollout over several hosts) is about the whole fleet: its title and host lists
come from the rollout, and its status is the one of the four a single deployment would have.
An event that carries an announcement (notify.yml: maintenance start and end, an incident) is
no deployment: it has a kind, a title, a message and a severity, goes to the same channels with
payloads of its own, and is always e-mailed; deployment payloads do not change.
Payloads are built by pure functions so they can be tested without a network; sending uses
only the Python standard library.

A channel that fails is reported, never raised: a notification must not hide or replace the
deployment's own outcome. Secrets (webhook URLs, header values, the SMTP password) never
appear in what this module returns: errors name the channel and what went wrong (an HTTP
status, "connection refused"), and a URL is shown at most as ``scheme://host/***``.
"""
from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from http.client import HTTPException, RemoteDisconnected
from urllib.parse import quote, unquote, urlsplit

STATUSES = ("success", "failed", "rolled_back", "rollback_failed")
FAILURE_STATUSES = ("failed", "rolled_back", "rollback_failed")
CHANNELS = ("slack", "webhook", "email", "step_summary")

SLACK_COLORS = {"success": "good", "failed": "danger", "rolled_back": "warning", "rollback_failed": "danger"}
SLACK_EMOJI = {"success": ":white_check_mark:", "failed": ":x:", "rolled_back": ":warning:",
               "rollback_failed": ":rotating_light:"}
MARKDOWN_EMOJI = {"success": "\u2705", "failed": "\u274c", "rolled_back": "\u26a0\ufe0f", "rollback_failed": "\U0001f6a8"}
HEADLINES = {
    "success": "Deployment succeeded",
    "failed": "Deployment failed",
    "rolled_back": "Deployment failed and was rolled back",
    "rollback_failed": "Deployment failed and its rollback failed",
}
# A rollout's status, its headline, and the deployment status its channels use (colour, emoji,
# whether it is e-mailed).
ROLLOUT_STATUSES = {
    "success": ("Rollout succeeded", "success"),
    "completed_with_failures": ("Rollout completed with failed hosts", "failed"),
    "stopped": ("Rollout stopped at its failure threshold", "failed"),
    "reverted": ("Rollout stopped and the fleet was reverted", "rolled_back"),
    "revert_failed": ("Rollout stopped and its fleet revert failed", "rollback_failed"),
}
# Announcements: kind -> (default title, default severity); severity -> Slack colour and emojis.
ANNOUNCEMENTS = {
    "maintenance_start": ("Maintenance started", "warning"),
    "maintenance_end": ("Maintenance ended", "info"),
    "incident": ("Incident", "critical"),
    "incident_resolved": ("Incident resolved", "info"),
    "notice": ("Notice", "info"),
}
SEVERITIES = ("info", "warning", "critical")
ANNOUNCEMENT_COLORS = {"info": "#439FE0", "warning": "warning", "critical": "danger"}
ANNOUNCEMENT_SLACK_EMOJI = {"info": ":information_source:", "warning": ":construction:", "critical": ":rotating_light:"}
ANNOUNCEMENT_MARKDOWN_EMOJI = {"info": "\u2139\ufe0f", "warning": "\U0001f6a7", "critical": "\U0001f6a8"}
# Host names listed per line of a rollout in Slack, the e-mail and the step summary; the webhook
# always gets the whole rollout.
MAX_LISTED_HOSTS = 20
FOOTER = "homeiq.deploy"
USER_AGENT = "homeiq.deploy-notify/1"
# Failing checks listed in a Slack message or an e-mail; the webhook always gets all of them.
MAX_LISTED_CHECKS = 20
MAX_ERROR_BODY = 120


class NotifyInputError(Exception):
    """Bad module input; the message is one line a person can act on."""


@dataclass
class Event:
    """One deployment outcome (or, with `announcement`, one announcement), with what the channels link to."""
    deployment_id: str | None
    status: str | None
    timestamp: datetime
    commit: str | None = None
    branch: str | None = None
    project: str | None = None
    environment: str | None = None
    host: str | None = None
    failing_checks: list = field(default_factory=list)
    rollback: dict | None = None
    report_path: str | None = None
    notes: str | None = None
    repository: str | None = None
    workflow_run_id: str | None = None
    workflow_url: str | None = None
    commit_url: str | None = None
    rollout: dict | None = None
    announcement: dict | None = None


@dataclass
class Delivery:
    """What happened to one channel."""
    channel: str
    sent: bool = False
    error: str | None = None
    skipped: bool = False
    detail: str | None = None
    attempts: int = 0
    target: str | None = None

    def as_dict(self):
        return {"channel": self.channel, "sent": self.sent, "error": self.error, "skipped": self.skipped,
                "detail": self.detail, "attempts": self.attempts, "target": self.target}


# ---------------------------------------------------------------------------------------------
# The event


def _text(value):
    """A stripped string, or None for None and blanks."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_timestamp(value, now=None):
    """An aware UTC datetime from an ISO 8601 string (naive means UTC); now when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise NotifyInputError(
                "event.timestamp %r is not an ISO 8601 time; give e.g. 2025-11-26T10:15:00Z or leave it empty for now"
                % str(value)) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).replace(microsecond=0)


def iso(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_text(item):
    """One failing check as a line: strings as given, a health report entry as `name: error`."""
    if item is None:
        return None
    if isinstance(item, dict):
        name = _text(item.get("name") or item.get("check") or item.get("service"))
        why = _text(item.get("error") or item.get("message") or item.get("msg") or item.get("status"))
        if name and why:
            return "%s: %s" % (name, why)
        if name or why:
            return name or why
        return json.dumps(item, sort_keys=True, default=str)
    return _text(item)


def commit_link(template, commit):
    """The commit's URL: `template` with {commit} replaced, or `template` as a base URL."""
    template = _text(template)
    commit = _text(commit)
    if not template or not commit:
        return None
    if "{commit}" in template:
        return template.replace("{commit}", quote(commit, safe=""))
    return template.rstrip("/") + "/" + quote(commit, safe="")


def build_event(raw, repository=None, workflow_run_id=None, workflow_url=None, commit_url=None, now=None):
    """The Event of the module's `event` option and its context options."""
    raw = dict(raw or {})
    if raw.get("announcement") is not None and raw.get("announcement") != {}:
        return build_announcement(raw, repository=repository, workflow_run_id=workflow_run_id,
                                  workflow_url=workflow_url, now=now)
    deployment_id = _text(raw.get("deployment_id"))
    if not deployment_id:
        raise NotifyInputError("event.deployment_id is empty: give the id of the deployment the notification is about")
    rollout = parse_rollout(raw.get("rollout"))
    status = _text(raw.get("status"))
    if rollout:
        implied = ROLLOUT_STATUSES[rollout["status"]][1]
        if status and status != implied:
            raise NotifyInputError(
                "event.status %r disagrees with event.rollout.status %r (a %s rollout is announced as %s); "
                "leave event.status empty" % (status, rollout["status"], rollout["status"], implied))
        status = implied
    if not status:
        raise NotifyInputError("event.status is empty: give one of %s, or a rollout" % ", ".join(STATUSES))
    if status not in STATUSES:
        raise NotifyInputError("event.status %r is not one of %s" % (status, ", ".join(STATUSES)))
    checks = raw.get("failing_checks") or []
    if not isinstance(checks, (list, tuple)):
        checks = [checks]
    rollback = raw.get("rollback")
    if rollback is not None and not isinstance(rollback, dict):
        raise NotifyInputError("event.rollback must be a dict (or null), not %s" % type(rollback).__name__)
    commit = _text(raw.get("commit"))
    return Event(
        deployment_id=deployment_id,
        status=status,
        timestamp=parse_timestamp(raw.get("timestamp"), now=now),
        commit=commit,
        branch=_text(raw.get("branch")),
        project=_text(raw.get("project")),
        environment=_text(raw.get("environment")),
        host=_text(raw.get("host")),
        failing_checks=[c for c in (check_text(i) for i in checks) if c],
        rollback=dict(rollback) if rollback else None,
        report_path=_text(raw.get("report_path")),
        notes=_text(raw.get("notes")),
        repository=_text(repository),
        workflow_run_id=_text(workflow_run_id),
        workflow_url=_text(workflow_url),
        commit_url=commit_link(commit_url, commit),
        rollout=rollout,
    )


def parse_announcement(raw):
    """The announcement of an event (kind, title, message, severity) checked and completed."""
    if not isinstance(raw, dict):
        raise NotifyInputError("event.announcement must be a dict (kind, text, title, severity), not %s"
                               % type(raw).__name__)
    kind = _text(raw.get("kind"))
    if kind not in ANNOUNCEMENTS:
        raise NotifyInputError("announcement kind %r is not one of %s" % (kind or "", ", ".join(ANNOUNCEMENTS)))
    message = raw.get("text")
    message = str(message).strip() if message is not None else ""
    if not message:
        raise NotifyInputError("announcement text is empty: say what is happening and what people should expect")
    default_title, default_severity = ANNOUNCEMENTS[kind]
    severity = _text(raw.get("severity")) or default_severity
    if severity not in SEVERITIES:
        raise NotifyInputError("announcement severity %r is not one of %s" % (severity, ", ".join(SEVERITIES)))
    return {"kind": kind, "title": _text(raw.get("title")) or default_title, "message": message, "severity": severity}


def build_announcement(raw, repository=None, workflow_run_id=None, workflow_url=None, now=None):
    """The Event of an announcement: no deployment, status or rollout; scope and CI context as for one."""
    announcement = parse_announcement(raw.get("announcement"))
    for key in ("status", "rollout"):
        if raw.get(key) not in (None, "", {}):
            raise NotifyInputError("event.%s is set on an announcement: an announcement is no deployment outcome; "
                                   "leave event.%s empty" % (key, key))
    return Event(
        deployment_id=None,
        status=None,
        timestamp=parse_timestamp(raw.get("timestamp"), now=now),
        project=_text(raw.get("project")),
        environment=_text(raw.get("environment")),
        host=_text(raw.get("host")),
        repository=_text(repository),
        workflow_run_id=_text(workflow_run_id),
        workflow_url=_text(workflow_url),
        announcement=announcement,
    )


def _names(value, what):
    """A rollout's host list: names as strings, blanks dropped."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise NotifyInputError("event.rollout.%s must be a list of host names, not %s" % (what, type(value).__name__))
    return [t for t in (_text(v) for v in value) if t]


def _named(value, what):
    """A rollout's host -> why mapping; a plain list of names is accepted with no reasons."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): _text(v) or "" for k, v in value.items() if _text(k)}
    return {h: "" for h in _names(value, what)}


def parse_rollout(raw):
    """The rollout summary (deploy.yml's homeiq_rollout) checked and normalised, or None."""
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict):
        raise NotifyInputError("event.rollout must be a dict (deploy.yml's homeiq_rollout) or null, not %s"
                               % type(raw).__name__)
    status = _text(raw.get("status"))
    if status not in ROLLOUT_STATUSES:
        raise NotifyInputError("event.rollout.status %r is not one of %s" % (status, ", ".join(ROLLOUT_STATUSES)))
    stopped = raw.get("stopped") or {}
    if not isinstance(stopped, dict):
        raise NotifyInputError("event.rollout.stopped must be a dict (batch, hosts, failed, percentage) or empty")
    out = {"deployment_id": _text(raw.get("deployment_id")), "status": status}
    for key in ("updated", "unchanged", "reverted", "not_started", "unreachable"):
        out[key] = _names(raw.get(key), key)
    for key in ("failed", "revert_failed"):
        out[key] = _named(raw.get(key), key)
    out["stopped"] = {"batch": stopped.get("batch"), "hosts": _names(stopped.get("hosts"), "stopped.hosts"),
                      "failed": _names(stopped.get("failed"), "stopped.failed"),
                      "percentage": stopped.get("percentage")} if stopped else {}
    batches = raw.get("batches") or []
    out["batches"] = [_names(b, "batches[]") for b in batches] if isinstance(batches, (list, tuple)) else []
    return out


def rollout_hosts(rollout):
    """Every host the rollout names, once, in the order they are listed."""
    seen = []
    for key in ("updated", "unchanged", "failed", "reverted", "revert_failed", "not_started", "unreachable"):
        for h in rollout[key]:
            if h not in seen:
                seen.append(h)
    return seen


def _host_list(names, limit=MAX_LISTED_HOSTS):
    shown = list(names)[:limit]
    more = len(names) - len(shown)
    return ", ".join(shown) + (" … and %d more" % more if more else "")


def rollout_lines(rollout, limit=MAX_LISTED_HOSTS):
    """What happened to the fleet, a line per outcome (the lines deploy.yml prints)."""
    lines = []
    stop = rollout["stopped"]
    if stop:
        lines.append("stopped at batch %s: %d of %d hosts failed (%s%%)" % (
            stop["batch"], len(stop["failed"]), len(stop["hosts"]), stop["percentage"]))
    if rollout["updated"]:
        lines.append("updated: " + _host_list(rollout["updated"], limit))
    if rollout["unchanged"]:
        lines.append("already on the release: " + _host_list(rollout["unchanged"], limit))
    if rollout["failed"]:
        shown = ["%s (%s)" % (h, why.replace("_", " ")) if why else h for h, why in rollout["failed"].items()]
        lines.append("failed: " + _host_list(shown, limit))
    if rollout["reverted"]:
        lines.append("reverted to their previous images: " + _host_list(rollout["reverted"], limit))
    if rollout["revert_failed"]:
        lines.append("REVERT FAILED, left on the new release: " + _host_list(list(rollout["revert_failed"]), limit))
    if rollout["not_started"]:
        lines.append("not started: " + _host_list(rollout["not_started"], limit))
    if rollout["unreachable"]:
        lines.append("unreachable: " + _host_list(rollout["unreachable"], limit))
    return lines


def shown_status(event):
    """The status channels show: the rollout's own (`reverted`) or the deployment's."""
    return event.rollout["status"] if event.rollout else event.status


def title(event):
    """`Deployment failed: homeiq to prod on web-1` (the parts that are known); for a rollout
    `Rollout stopped and the fleet was reverted: homeiq to prod on 3 hosts`; for an announcement
    `Maintenance started: homeiq in prod`."""
    if event.announcement:
        scope = " in ".join(part for part in (event.project, event.environment) if part)
        if event.host:
            scope += (" on " if scope else "") + event.host
        return "%s: %s" % (event.announcement["title"], scope) if scope else event.announcement["title"]
    scope = event.project or "deployment %s" % event.deployment_id
    if event.environment:
        scope += " to %s" % event.environment
    if event.rollout:
        count = len(rollout_hosts(event.rollout))
        if count:
            scope += " on %d host%s" % (count, "" if count == 1 else "s")
        return "%s: %s" % (ROLLOUT_STATUSES[event.rollout["status"]][0], scope)
    if event.host:
        scope += " on %s" % event.host
    return "%s: %s" % (HEADLINES[event.status], scope)


def short_commit(commit):
    if commit and len(commit) == 40 and all(c in "0123456789abcdefABCDEF" for c in commit):
        return commit[:12]
    return commit


def _scalar(value):
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, sort_keys=True, default=str)
        return text if len(text) <= 200 else text[:199] + "\u2026"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def rollback_text(rollback):
    """`to: deploy-1, status: success` for a rollback dict."""
    if not rollback:
        return None
    return ", ".join("%s: %s" % (k, _scalar(v)) for k, v in rollback.items())


def listed_checks(event):
    checks = event.failing_checks[:MAX_LISTED_CHECKS]
    more = len(event.failing_checks) - len(checks)
    return checks, more


def workflow_label(event):
    return "run %s" % event.workflow_run_id if event.workflow_run_id else "workflow run"


# ---------------------------------------------------------------------------------------------
# Payloads


def slack_escape(text):
    """Slack's three control characters in message text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url, label):
    if any(c in url for c in "|<> \n"):
        return slack_escape(label)
    return "<%s|%s>" % (url, slack_escape(label))


def slack_payload(event):
    """The runbook's Slack message: emoji and title, one attachment coloured by outcome."""
    if event.announcement:
        return announcement_slack_payload(event)
    fields = [
        {"title": "Deployment ID", "value": slack_escape(event.deployment_id), "short": True},
        {"title": "Status", "value": slack_escape(shown_status(event)), "short": True},
    ]
    if event.branch:
        fields.append({"title": "Branch", "value": slack_escape(event.branch), "short": True})
    if event.commit:
        label = short_commit(event.commit)
        value = _slack_link(event.commit_url, label) if event.commit_url else slack_escape(label)
        fields.append({"title": "Commit", "value": value, "short": True})
    if event.workflow_url:
        fields.append({"title": "Workflow", "value": _slack_link(event.workflow_url, workflow_label(event)), "short": True})
    elif event.workflow_run_id:
        fields.append({"title": "Workflow", "value": slack_escape(workflow_label(event)), "short": True})
    if event.environment:
        fields.append({"title": "Environment", "value": slack_escape(event.environment), "short": True})
    if event.host:
        fields.append({"title": "Host", "value": slack_escape(event.host), "short": True})
    if event.rollout:
        lines = ["\u2022 " + slack_escape(line) for line in rollout_lines(event.rollout)]
        if lines:
            fields.append({"title": "Hosts", "value": "\n".join(lines), "short": False})
    if event.failing_checks:
        checks, more = listed_checks(event)
        lines = ["\u2022 " + slack_escape(c) for c in checks]
        if more:
            lines.append("\u2026 and %d more" % more)
        fields.append({"title": "Failing checks", "value": "\n".join(lines), "short": False})
    if event.rollback:
        fields.append({"title": "Rollback", "value": slack_escape(rollback_text(event.rollback)), "short": False})
    if event.notes:
        fields.append({"title": "Notes", "value": slack_escape(event.notes), "short": False})
    return {
        "text": "%s *%s*" % (SLACK_EMOJI[event.status], slack_escape(title(event))),
        "attachments": [{
            "color": SLACK_COLORS[event.status],
            "fields": fields,
            "footer": FOOTER,
            "ts": int(event.timestamp.timestamp()),
        }],
    }


def announcement_slack_payload(event):
    """An announcement in Slack: emoji and title, the message, one attachment coloured by severity."""
    ann = event.announcement
    fields = [{"title": "Kind", "value": slack_escape(ann["kind"]), "short": True},
              {"title": "Severity", "value": slack_escape(ann["severity"]), "short": True}]
    for label, value in (("Project", event.project), ("Environment", event.environment), ("Host", event.host)):
        if value:
            fields.append({"title": label, "value": slack_escape(value), "short": True})
    if event.workflow_url:
        fields.append({"title": "Workflow", "value": _slack_link(event.workflow_url, workflow_label(event)), "short": True})
    elif event.workflow_run_id:
        fields.append({"title": "Workflow", "value": slack_escape(workflow_label(event)), "short": True})
    return {
        "text": "%s *%s*" % (ANNOUNCEMENT_SLACK_EMOJI[ann["severity"]], slack_escape(title(event))),
        "attachments": [{
            "color": ANNOUNCEMENT_COLORS[ann["severity"]],
            "text": slack_escape(ann["message"]),
            "fields": fields,
            "footer": FOOTER,
            "ts": int(event.timestamp.timestamp()),
        }],
    }


def announcement_webhook_payload(event):
    """An announcement's JSON body: `kind` is always `announcement`; every key is always present."""
    ann = event.announcement
    return {
        "kind": "announcement",
        "announcement": ann["kind"],
        "severity": ann["severity"],
        "title": ann["title"],
        "message": ann["message"],
        "project": event.project,
        "environment": event.environment,
        "host": event.host,
        "repository": event.repository,
        "workflow_run_id": event.workflow_run_id,
        "workflow_url": event.workflow_url,
        "timestamp": iso(event.timestamp),
    }


def webhook_payload(event):
    """The generic webhook's JSON body; every key is always present (null when unknown)."""
    if event.announcement:
        return announcement_webhook_payload(event)
    return {
        "deployment_id": event.deployment_id,
        "status": event.status,
        "commit": event.commit,
        "branch": event.branch,
        "repository": event.repository,
        "environment": event.environment,
        "host": event.host,
        "project": event.project,
        "timestamp": iso(event.timestamp),
        "failing_checks": list(event.failing_checks),
        "rollback": event.rollback,
        "workflow_run_id": event.workflow_run_id,
        "workflow_url": event.workflow_url,
        "report_path": event.report_path,
        "notes": event.notes,
        "rollout": event.rollout,
    }


def facts(event):
    """(label, text, url) rows shared by the e-mail and the step summary."""
    if event.announcement:
        rows = [("Kind", event.announcement["kind"], None), ("Severity", event.announcement["severity"], None)]
        for label, value in (("Project", event.project), ("Environment", event.environment), ("Host", event.host),
                             ("Repository", event.repository)):
            if value:
                rows.append((label, value, None))
        if event.workflow_url or event.workflow_run_id:
            rows.append(("Workflow", workflow_label(event), event.workflow_url))
        rows.append(("Time", iso(event.timestamp), None))
        return rows
    rows = [("Deployment ID", event.deployment_id, None), ("Status", shown_status(event), None)]
    for label, value in (("Project", event.project), ("Environment", event.environment), ("Host", event.host),
                         ("Branch", event.branch)):
        if value:
            rows.append((label, value, None))
    if event.commit:
        rows.append(("Commit", event.commit, event.commit_url))
    if event.repository:
        rows.append(("Repository", event.repository, None))
    if event.workflow_url or event.workflow_run_id:
        rows.append(("Workflow", workflow_label(event), event.workflow_url))
    rows.append(("Time", iso(event.timestamp), None))
    if event.rollback:
        rows.append(("Rollback", rollback_text(event.rollback), None))
    if event.report_path:
        rows.append(("Report", event.report_path, None))
    return rows


def email_subject(event):
    if event.announcement:
        return "[%s] %s" % (event.announcement["severity"], title(event))
    return "%s (%s)" % (title(event), event.deployment_id)


def email_body(event):
    """Plain text: the title, the facts, the failing checks and the notes."""
    rows = facts(event)
    width = max(len(row[0]) for row in rows) + 1
    lines = [title(event), ""]
    if event.announcement:
        lines += event.announcement["message"].splitlines() + [""]
    for label, text, url in rows:
        lines.append("%-*s %s%s" % (width, label + ":", text, " (%s)" % url if url and url != text else ""))
    if event.announcement:
        return "\n".join(lines + ["", "-- ", "Sent by %s." % FOOTER]) + "\n"
    if event.rollout and rollout_lines(event.rollout):
        lines += ["", "Hosts:"] + ["  - %s" % line for line in rollout_lines(event.rollout)]
    if event.failing_checks:
        checks, more = listed_checks(event)
        lines += ["", "Failing checks:"] + ["  - %s" % c for c in checks]
        if more:
            lines.append("  ... and %d more" % more)
    if event.notes:
        lines += ["", "Notes:"] + ["  " + line for line in event.notes.splitlines()]
    lines += ["", "-- ", "Sent by %s for deployment %s." % (FOOTER, event.deployment_id)]
    return "\n".join(lines) + "\n"


def email_message(event, sender, recipients):
    msg = EmailMessage()
    msg["Subject"] = email_subject(event)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(usegmt=True)
    domain = sender.rpartition("@")[2].strip("<> ") or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
    if event.announcement:
        msg["X-HomeIQ-Announcement"] = event.announcement["kind"]
        msg["X-HomeIQ-Severity"] = event.announcement["severity"]
    else:
        msg["X-HomeIQ-Deployment-ID"] = event.deployment_id
        msg["X-HomeIQ-Deployment-Status"] = event.status
    msg.set_content(email_body(event))
    return msg


def md_escape(text):
    """Text safe inside a Markdown table cell or paragraph."""
    out = str(text).replace("\\", "\\\\")
    for ch in "`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\r", "").replace("\n", "<br>")


def _md_code(text):
    text = str(text).replace("\n", " ")
    if "`" in text or "|" in text:
        return md_escape(text)
    return "`%s`" % text


def _md_url(url):
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("|", "%7C")


def step_summary_markdown(event):
    """A section for $GITHUB_STEP_SUMMARY: heading, facts table, failing checks, notes; for an
    announcement heading, message and facts."""
    if event.announcement:
        emoji = ANNOUNCEMENT_MARKDOWN_EMOJI[event.announcement["severity"]]
        lines = ["### %s %s" % (emoji, md_escape(title(event))), "", md_escape(event.announcement["message"]), "",
                 "| | |", "| --- | --- |"]
    else:
        lines = ["### %s %s" % (MARKDOWN_EMOJI[event.status], md_escape(title(event))), "", "| | |", "| --- | --- |"]
    for label, text, url in facts(event):
        if label in ("Deployment ID", "Status", "Commit", "Report", "Kind"):
            cell = _md_code(short_commit(text) if label == "Commit" else text)
        else:
            cell = md_escape(text)
        if url:
            cell = "[%s](%s)" % (cell, _md_url(url))
        lines.append("| %s | %s |" % (label, cell))
    if event.rollout and rollout_lines(event.rollout):
        lines += ["", "**Hosts**", ""] + ["- %s" % md_escape(line) for line in rollout_lines(event.rollout)]
    if event.failing_checks:
        checks, more = listed_checks(event)
        lines += ["", "**Failing checks**", ""] + ["- %s" % md_escape(c) for c in checks]
        if more:
            lines.append("- \u2026 and %d more" % more)
    if event.notes:
        lines += ["", "**Notes**", "", md_escape(event.notes)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Secrets in messages


def mask_url(url):
    """`scheme://host[:port]/***`: what may be shown of a secret URL."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "***"
    if not parts.scheme or not host:
        return "***"
    if ":" in host:
        host = "[%s]" % host
    return "%s://%s%s/***" % (parts.scheme, host, ":%d" % port if port else "")


def secret_parts(url=None, values=()):
    """Strings that must never be shown: the URL, its path and query, and the given values."""
    found = []
    if url:
        found.append(str(url))
        try:
            parts = urlsplit(str(url))
            for piece in (parts.path, parts.query, unquote(parts.path), parts.password or "", parts.username or ""):
                if piece and piece.strip("/"):
                    found.append(piece)
        except ValueError:
            pass
    for value in values:
        if value is not None and str(value):
            found.append(str(value))
    # Longest first, so a URL is replaced whole before its path; very short values would
    # mangle ordinary words and are not useful secrets to hide inside text anyway.
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def scrub(text, secrets):
    text = str(text)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _one_line(text, limit=MAX_ERROR_BODY):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


# ---------------------------------------------------------------------------------------------
# Sending


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers, not instructions: a webhook that redirects is misconfigured, and
    following it would send the payload (and its headers) somewhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _opener(validate_certs):
    ctx = ssl.create_default_context()
    if not validate_certs:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(_NoRedirect(), urllib.request.HTTPSHandler(context=ctx))


def _secs(value):
    return "%g s" % value


def _network_error(exc, timeout):
    """(reason, retryable) for an exception raised while connecting, sending or reading."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        inner = exc.reason
        if isinstance(inner, BaseException):
            exc = inner
        elif isinstance(inner, str) and "timed out" in inner:
            return "timed out after %s" % _secs(timeout), True
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused", True
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out after %s" % _secs(timeout), True
    if isinstance(exc, ConnectionResetError):
        return "connection reset", True
    if isinstance(exc, (RemoteDisconnected, smtplib.SMTPServerDisconnected)):
        return "connection closed without an answer", True
    if isinstance(exc, socket.gaierror):
        return "host name not resolved", False
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate not trusted (%s)" % (exc.verify_message or "verify failed"), False
    if isinstance(exc, ssl.SSLError):
        return "TLS error (%s)" % (exc.reason or type(exc).__name__), False
    if isinstance(exc, HTTPException):
        return "bad HTTP answer (%s)" % type(exc).__name__, True
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__, True
    return "%s" % type(exc).__name__, False


def _retry_after(headers, cap):
    try:
        value = float((headers or {}).get("Retry-After") or 0)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(value, cap)) if value else None


def post_json(channel, url, payload, headers=None, timeout=10.0, retries=1, retry_delay=1.0, validate_certs=True,
              sleep=time.sleep):
    """POSTs `payload` as JSON; one Delivery, never an exception. 2xx is sent; 5xx, 429 and
    connection errors are tried again up to `retries` times; anything else is final."""
    headers = dict(headers or {})
    secrets = secret_parts(url, headers.values())
    delivery = Delivery(channel=channel, target=mask_url(url))
    try:
        parts = urlsplit(str(url))
        ok_url = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok_url = False
    if not ok_url:
        delivery.error = "the URL is not an http or https URL (%s)" % delivery.target
        return delivery
    for name, value in headers.items():
        if any(c in str(name) + str(value) for c in "\r\n\0"):
            delivery.error = "header %s has a line break in its name or value" % _one_line(scrub(name, secrets), 40)
            return delivery
    body = json.dumps(payload).encode("utf-8")
    send_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    send_headers.update({str(k): str(v) for k, v in headers.items()})
    opener = _opener(validate_certs)
    attempts_left = 1 + max(0, int(retries))
    while attempts_left:
        attempts_left -= 1
        delivery.attempts += 1
        wait, retryable = retry_delay, False
        request = urllib.request.Request(str(url), data=body, headers=send_headers, method="POST")
        try:
            with opener.open(request, timeout=timeout) as response:
                response.read(65536)
                delivery.sent, delivery.error = True, None
                delivery.detail = "HTTP %d" % response.status
                return delivery
        except urllib.error.HTTPError as exc:
            try:
                text = exc.read(4096).decode("utf-8", "replace")
            except Exception:  # the body of an error is a courtesy; a broken one is not an error of its own
                text = ""
            finally:
                exc.close()
            reason = "HTTP %d" % exc.code
            if 300 <= exc.code < 400:
                reason += " (redirects are not followed; give the final URL)"
            elif text.strip():
                reason += " (%s)" % _one_line(scrub(text, secrets))
            delivery.error = reason
            retryable = exc.code >= 500 or exc.code == 429
            if exc.code == 429:
                wait = _retry_after(exc.headers, timeout) or retry_delay
        except Exception as exc:  # every network failure becomes a reason, never a traceback
            reason, retryable = _network_error(exc, timeout)
            delivery.error = scrub(reason, secrets)
        if not retryable or not attempts_left:
            break
        sleep(wait)
    if delivery.attempts > 1:
        delivery.error += " after %d attempts" % delivery.attempts
    return delivery


def _smtp_error(exc, timeout, secrets):
    """(reason, retryable) for an SMTP failure."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "SMTP login refused (%d)" % exc.smtp_code, False
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        text = str(exc)
        if "AUTH" in text:
            return "the server offers no login on this connection (set smtp_starttls or smtp_ssl)", False
        if "STARTTLS" in text.upper():
            return "the server does not offer STARTTLS", False
        return "the server does not support %s" % _one_line(text), False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(answer[0]) for answer in exc.recipients.values()})
        return "every recipient refused (%s)" % ", ".join(codes), False
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return "sender refused (%d %s)" % (exc.smtp_code, _one_line(scrub(_decode(exc.smtp_error), secrets))), False
    if isinstance(exc, smtplib.SMTPResponseException):
        return ("SMTP %d %s" % (exc.smtp_code, _one_line(scrub(_decode(exc.smtp_error), secrets))),
                400 <= exc.smtp_code < 500)
    return _network_error(exc, timeout)


def _decode(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def send_email(message, host, port=None, user=None, password=None, starttls=False, use_ssl=False, timeout=10.0,
               retries=1, retry_delay=1.0, validate_certs=True, sleep=time.sleep):
    """Sends `message` over SMTP; one Delivery, never an exception. Connection errors and
    4xx (transient) answers are tried again up to `retries` times."""
    if port is None or port == 0:
        port = 465 if use_ssl else 587 if starttls else 25
    delivery = Delivery(channel="email", target="smtp%s://%s:%d" % ("s" if use_ssl else "", host, port))
    secrets = secret_parts(values=[password])
    ctx = ssl.create_default_context()
    if not validate_certs:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    attempts_left = 1 + max(0, int(retries))
    while attempts_left:
        attempts_left -= 1
        delivery.attempts += 1
        client, retryable = None, False
        try:
            if use_ssl:
                client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ctx)
            else:
                client = smtplib.SMTP(host, port, timeout=timeout)
                if starttls:
                    client.starttls(context=ctx)
            if user:
                client.login(user, password or "")
            refused = client.send_message(message)
            delivery.sent, delivery.error = True, None
            accepted = len(getaddresses(message.get_all("To", []))) - len(refused)
            delivery.detail = "accepted for %d recipient%s" % (accepted, "" if accepted == 1 else "s")
            if refused:
                delivery.detail += "; refused: %s" % ", ".join(sorted(refused))
            return delivery
        except Exception as exc:  # every SMTP failure becomes a reason, never a traceback
            reason, retryable = _smtp_error(exc, timeout, secrets)
            delivery.error = scrub(reason, secrets)
        finally:
            if client is not None:
                try:
                    client.quit()
                except Exception:  # the message is already accepted or the failure recorded
                    try:
                        client.close()
                    except Exception:  # nothing left to release
                        pass
        if not retryable or not attempts_left:
            break
        sleep(retry_delay)
    if delivery.attempts > 1:
        delivery.error += " after %d attempts" % delivery.attempts
    return delivery


def append_summary(path, markdown):
    """Appends `markdown` to the step summary file (created when missing)."""
    delivery = Delivery(channel="step_summary", target=str(path), attempts=1)
    try:
        with open(path, "a", encoding="utf-8") as fh:
            if fh.tell() > 0:
                fh.write("\n")
            fh.write(markdown)
    except OSError as exc:
        delivery.error = "cannot append to %s: %s" % (path, exc.strerror or type(exc).__name__)
        return delivery
    delivery.sent = True
    delivery.detail = "appended %d lines" % markdown.count("\n")
    return delivery


# ---------------------------------------------------------------------------------------------
# The module's work


@dataclass
class Plan:
    """The channels that are configured, in the order they are reported."""
    slack_url: str | None = None
    webhook_url: str | None = None
    webhook_headers: dict = field(default_factory=dict)
    email_to: list = field(default_factory=list)
    summary_path: str | None = None

    @property
    def channels(self):
        names = []
        if self.slack_url:
            names.append("slack")
        if self.webhook_url:
            names.append("webhook")
        if self.email_to:
            names.append("email")
        if self.summary_path:
            names.append("step_summary")
        return names


def plan(params, environ=None):
    environ = os.environ if environ is None else environ
    summary_path = None
    if params.get("step_summary", True):
        summary_path = _text(params.get("step_summary_path")) or _text(environ.get("GITHUB_STEP_SUMMARY"))
    return Plan(
        slack_url=_text(params.get("slack_webhook_url")),
        webhook_url=_text(params.get("webhook_url")),
        webhook_headers={str(k): "" if v is None else str(v) for k, v in (params.get("webhook_headers") or {}).items()},
        email_to=[a for a in (_text(x) for x in params.get("email_to") or []) if a],
        summary_path=summary_path,
    )


def _given(value, default):
    return default if value is None else value


def emails_for(status, always=False, announcement=False):
    """Failures are e-mailed, successes only when asked; an announcement always (it is meant to be read)."""
    return always or announcement or status in FAILURE_STATUSES


def default_sender():
    return "homeiq-deploy@%s" % (socket.gethostname() or "localhost")


def run(params, check_mode=False, environ=None, now=None, sleep=time.sleep):
    """Sends the event to every configured channel. Returns the module result (its warnings
    come from warnings_for): `notifications`, `sent`, `failed_channels` (not `failed`:
    Ansible reads that key as the task's own failure), `would_send`, `title`, `changed`.
    Raises NotifyInputError for bad input only."""
    event = build_event(params.get("event"), repository=params.get("repository"),
                        workflow_run_id=params.get("workflow_run_id"), workflow_url=params.get("workflow_url"),
                        commit_url=params.get("commit_url"), now=now)
    setup = plan(params, environ)
    timeout = float(_given(params.get("timeout"), 10))
    retries = int(_given(params.get("retries"), 1))
    retry_delay = float(_given(params.get("retry_delay"), 1))
    validate_certs = bool(params.get("validate_certs", True))
    if timeout <= 0:
        raise NotifyInputError("timeout must be more than 0 seconds")
    if retries < 0 or retry_delay < 0:
        raise NotifyInputError("retries and retry_delay must not be negative")

    http = {"timeout": timeout, "retries": retries, "retry_delay": retry_delay, "validate_certs": validate_certs,
            "sleep": sleep}
    jobs = []   # (channel, callable that sends, or None with the Delivery decided without sending)
    for channel in setup.channels:
        if channel == "slack":
            jobs.append((channel, partial(post_json, "slack", setup.slack_url, slack_payload(event), **http), None))
        elif channel == "webhook":
            jobs.append((channel, partial(post_json, "webhook", setup.webhook_url, webhook_payload(event),
                                          headers=setup.webhook_headers, **http), None))
        elif channel == "email":
            if not emails_for(event.status, params.get("email_always"), announcement=bool(event.announcement)):
                jobs.append((channel, None, Delivery(
                    channel="email", skipped=True,
                    detail="not sent: only %s deployments are e-mailed (email_always is off)"
                           % ", ".join(FAILURE_STATUSES))))
                continue
            sender = _text(params.get("email_from")) or default_sender()
            jobs.append((channel, partial(
                send_email, email_message(event, sender, setup.email_to), _text(params.get("smtp_host")) or "localhost",
                port=params.get("smtp_port") or None, user=_text(params.get("smtp_user")),
                password=params.get("smtp_password"), starttls=bool(params.get("smtp_starttls")),
                use_ssl=bool(params.get("smtp_ssl")), **http), None))
        elif channel == "step_summary":
            jobs.append((channel, partial(append_summary, setup.summary_path, step_summary_markdown(event)), None))

    would_send = [job[0] for job in jobs if job[1] is not None]
    if check_mode:
        deliveries = [decided or Delivery(channel=name, detail="check mode: would send, nothing sent")
                      for name, fn, decided in jobs]
    else:
        deliveries = [None] * len(jobs)
        with ThreadPoolExecutor(max_workers=max(1, len(would_send))) as pool:
            futures = {i: pool.submit(fn) for i, (name, fn, decided) in enumerate(jobs) if fn is not None}
            for i, (name, fn, decided) in enumerate(jobs):
                deliveries[i] = futures[i].result() if fn is not None else decided

    notifications = [d.as_dict() for d in deliveries]
    sent = [d.channel for d in deliveries if d.sent]
    failed = [d.channel for d in deliveries if d.error]
    return {
        "changed": bool(would_send) if check_mode else bool(sent),
        "title": title(event),
        "status": event.status,
        "deployment_id": event.deployment_id,
        "channels": setup.channels,
        "would_send": would_send,
        "sent": sent,
        "failed_channels": failed,
        "notifications": notifications,
    }


def warnings_for(result):
    """One warning per failed channel, saying the deployment's outcome stands."""
    if result["deployment_id"] is None:
        return ["%s notification failed: %s (the announcement did not reach this channel)" % (n["channel"], n["error"])
                for n in result["notifications"] if n["error"]]
    return ["%s notification failed: %s (deployment %s stays %s; the notification does not change that)"
            % (n["channel"], n["error"], result["deployment_id"], result["status"])
            for n in result["notifications"] if n["error"]]


def failure_message(result):
    return "notification failed: " + "; ".join("%s: %s" % (n["channel"], n["error"])
                                               for n in result["notifications"] if n["error"])
