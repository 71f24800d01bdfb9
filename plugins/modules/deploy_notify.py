#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_notify
short_description: Send one deployment outcome to Slack, a webhook, e-mail and the CI step summary
version_added: 0.1.0
description:
  - Sends one deployment event to every configured channel and reports, per channel, whether it was sent
    and why not. A channel is on only when it is configured.
  - C(slack) (O(slack_webhook_url)) posts the runbook's Slack message to an incoming webhook, a title
    with an emoji and one attachment coloured by outcome (C(good) for V(success), C(danger) for V(failed)
    and V(rollback_failed), C(warning) for V(rolled_back)) with the fields Deployment ID, Status, Branch,
    Commit (a link with O(commit_url)), Workflow (a link with O(workflow_url)), Environment, Host (for a
    rollout, its Hosts by outcome), the failing checks, the rollback and the notes, a footer and a timestamp.
  - C(webhook) (O(webhook_url)) posts JSON with the keys C(deployment_id), C(status), C(commit),
    C(branch), C(repository), C(environment), C(host), C(project), C(timestamp) (ISO 8601, UTC),
    C(failing_checks) (list), C(rollback) (dict or null), C(workflow_run_id), C(workflow_url),
    C(report_path), C(notes) and C(rollout) (the whole rollout, or null); every key is always present, null
    when unknown.
  - C(email) (O(email_to)) sends a plain text e-mail over SMTP, only for V(failed), V(rolled_back) and
    V(rollback_failed) unless O(email_always) is set.
  - An event with O(event.announcement) is a manual announcement (a maintenance window, an incident), not a
    deployment outcome. It goes to the same channels with payloads of its own, coloured by its severity (Slack
    C(#439FE0) for V(info), C(warning), C(danger) for V(critical)); the webhook gets the keys C(kind) (always
    V(announcement)), C(announcement), C(severity), C(title), C(message), C(project), C(environment), C(host),
    C(repository), C(workflow_run_id), C(workflow_url) and C(timestamp); it is always e-mailed.
  - C(step_summary) appends a Markdown section to O(step_summary_path), or to the file named by
    C($GITHUB_STEP_SUMMARY) in the module's environment when that is set.
  - HTTP channels are tried again once (O(retries)) after a 5xx or 429 answer or a connection error;
    redirects are not followed. Channels are sent at the same time.
  - A channel that fails is a warning and does not fail the task unless O(fail_on_error) is set, so a
    notification never hides or replaces the deployment's own outcome.
  - Webhook URLs, header values and the SMTP password are never part of the result, the warnings or the
    errors; a URL is shown at most as C(scheme://host/***).
author:
  - HomeIQ maintainers (!UNKNOWN)
requirements:
  - Python standard library only.
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Nothing is sent and the step summary is not written; RV(would_send) names the channels that would be.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: none
    details: Every run sends the notification again; C(changed) is true when at least one channel was sent.
options:
  event:
    description: The deployment outcome to announce.
    type: dict
    required: true
    suboptions:
      deployment_id:
        description: Id of the deployment. Required, except for an announcement (O(event.announcement)), which has none.
        type: str
      status:
        description:
          - Outcome of the deployment. Required unless O(event.rollout) is given, which implies it.
          - Not with O(event.announcement).
        type: str
        choices: [success, failed, rolled_back, rollback_failed]
      commit:
        description: Commit deployed.
        type: str
      branch:
        description: Branch deployed.
        type: str
      project:
        description: Project (Compose project or application) deployed.
        type: str
      environment:
        description: Environment deployed to, for example V(prod).
        type: str
      host:
        description: Host deployed to.
        type: str
      failing_checks:
        description:
          - Checks that failed. Strings are shown as given; a dict (for example a service of
            homeiq.deploy.health_probe's report) is shown as its name and error.
        type: list
        elements: raw
        default: []
      rollback:
        description: "What the rollback did, for example C({to: deploy-20251126-101010, status: success}); shown as key-value pairs."
        type: dict
      report_path:
        description: Where the health report of the deployment is.
        type: str
      notes:
        description: Free text, for example where the logs of the failing services were saved.
        type: str
      timestamp:
        description: When the deployment ended, ISO 8601 (a time without zone is UTC). Default now.
        type: str
      rollout:
        description:
          - The summary of a rollout over several hosts, as C(deploy.yml) publishes it (C(homeiq_rollout)). With it the
            notification is about the whole fleet, once, rather than one host.
          - C(status) (required) is V(success), V(completed_with_failures), V(stopped), V(reverted) or V(revert_failed).
            It sets O(event.status) (V(success); V(failed) for V(completed_with_failures) and V(stopped); V(rolled_back)
            for V(reverted); V(rollback_failed) for V(revert_failed)), so leave that empty or give the same.
          - C(updated), C(unchanged), C(reverted), C(not_started), C(unreachable) are lists of host names; C(failed) and
            C(revert_failed) map a host to its status or error; C(stopped) is the batch that breached the failure
            threshold (C(batch), C(hosts), C(failed), C(percentage)); C(batches) the hosts of each batch.
          - The title counts the hosts and the channels list them by outcome (at most 20 names a line; the webhook
            gets the whole rollout in its C(rollout) key, which is null for a single deployment).
        type: dict
      announcement:
        description:
          - Makes the event a manual announcement rather than a deployment outcome (the playbook C(notify.yml)).
            Only O(event.project), O(event.environment), O(event.host) and O(event.timestamp) are used with it;
            O(event.status) and O(event.rollout) must be empty.
        type: dict
        suboptions:
          kind:
            description:
              - V(maintenance_start), V(maintenance_end), V(incident), V(incident_resolved) or V(notice). It gives the
                default title (V(Maintenance started), V(Maintenance ended), V(Incident), V(Incident resolved),
                V(Notice)) and severity (V(warning) for maintenance starting, V(critical) for an incident, V(info)
                otherwise). Checked when the notification is built; another value is a one-line error.
            type: str
            required: true
          text:
            description: The message, what is happening and what people should expect; must not be empty.
            type: str
            required: true
          title:
            description: Headline; default by O(event.announcement.kind).
            type: str
          severity:
            description: V(info), V(warning) or V(critical); default by O(event.announcement.kind).
            type: str
  slack_webhook_url:
    description: Slack incoming webhook URL. Empty leaves Slack off. A secret; never shown.
    type: str
  webhook_url:
    description: URL that receives the JSON event by POST. Empty leaves the webhook off. A secret; never shown.
    type: str
  webhook_headers:
    description: Extra request headers of the webhook, for example C(Authorization). Values are secrets; never shown.
    type: dict
    default: {}
  email_to:
    description: Recipients of the e-mail. Empty leaves e-mail off.
    type: list
    elements: str
    default: []
  email_from:
    description: Sender address. Default C(homeiq-deploy@) and the host name of the host the module runs on.
    type: str
  email_always:
    description: E-mail every outcome, not only V(failed), V(rolled_back) and V(rollback_failed).
    type: bool
    default: false
  smtp_host:
    description: SMTP server.
    type: str
    default: localhost
  smtp_port:
    description: SMTP port. Default 465 with O(smtp_ssl), 587 with O(smtp_starttls), 25 otherwise.
    type: int
  smtp_user:
    description: User name to log in with; no login when empty.
    type: str
  smtp_password:
    description: Password to log in with. A secret; never shown.
    type: str
  smtp_starttls:
    description: Upgrade the connection with STARTTLS before logging in and sending.
    type: bool
    default: false
  smtp_ssl:
    description: Connect with TLS from the start (SMTPS). Not together with O(smtp_starttls).
    type: bool
    default: false
  step_summary:
    description: Append the Markdown summary when a step summary file is known (O(step_summary_path) or C($GITHUB_STEP_SUMMARY)).
    type: bool
    default: true
  step_summary_path:
    description: File the Markdown summary is appended to (created when missing). Default C($GITHUB_STEP_SUMMARY).
    type: path
  commit_url:
    description:
      - Makes the commit a link. A URL containing C({commit}) has it replaced by the commit; any other URL is
        a base the commit is appended to, for example V(https://github.com/org/repo/commit/).
    type: str
  workflow_url:
    description: URL of the CI run, linked from the Workflow field and sent in the webhook.
    type: str
  workflow_run_id:
    description: Id of the CI run, shown and sent in the webhook.
    type: str
  repository:
    description: Repository deployed (for example V(org/homeiq)), sent in the webhook and the e-mail.
    type: str
  timeout:
    description: Seconds one channel may wait for a connection or an answer, per attempt.
    type: float
    default: 10
  retries:
    description: Attempts after the first when an HTTP channel gets a 5xx or 429 answer or a connection error, or SMTP a connection error or a 4xx answer.
    type: int
    default: 1
  retry_delay:
    description: Seconds between attempts (a 429 answer's C(Retry-After), up to O(timeout), wins).
    type: float
    default: 1
  validate_certs:
    description: Verify TLS certificates of HTTPS webhooks and of the SMTP server.
    type: bool
    default: true
  fail_on_error:
    description: Fail the task when a channel fails. By default a failed channel is a warning and the task succeeds.
    type: bool
    default: false
notes:
  - Notifications go out from the host the task runs on. The role homeiq.deploy.notify delegates them to the
    controller by default, as a CI runner would send them.
seealso:
  - module: homeiq.deploy.deploy_ledger
"""

EXAMPLES = r"""
- name: Announce the start of a maintenance window on every configured channel
  homeiq.deploy.deploy_notify:
    event:
      project: homeiq
      environment: prod
      announcement:
        kind: maintenance_start
        text: The dashboard is read-only until 22:00 UTC while InfluxDB is upgraded.
    webhook_url: https://hooks.example.com/deployments
    email_to:
      - users@example.com
    fail_on_error: true
  delegate_to: localhost

- name: Tell Slack, the webhook and the CI summary that the deployment was rolled back
  homeiq.deploy.deploy_notify:
    event:
      deployment_id: deploy-20251126-101500
      status: rolled_back
      commit: 3f5c2a9d0e4b8c7a6f1e2d3c4b5a69788796a5b4
      branch: main
      project: homeiq
      environment: prod
      host: homeiq-1
      failing_checks:
        - "data-api: HTTP 503"
      rollback:
        to: deploy-20251125-090000
        status: success
    slack_webhook_url: "{{ vault_slack_webhook_url }}"
    webhook_url: https://hooks.example.com/deployments
    webhook_headers:
      Authorization: "Bearer {{ vault_webhook_token }}"
    commit_url: https://github.com/org/homeiq/commit/{commit}
    workflow_url: "{{ lookup('ansible.builtin.env', 'GITHUB_SERVER_URL') }}/org/homeiq/actions/runs/{{ lookup('ansible.builtin.env', 'GITHUB_RUN_ID') }}"
  delegate_to: localhost

- name: E-mail the on-call list about failures through an authenticated relay
  homeiq.deploy.deploy_notify:
    event: "{{ deployment_event }}"
    email_to:
      - oncall@example.com
    email_from: deploy@example.com
    smtp_host: smtp.example.com
    smtp_starttls: true
    smtp_user: deploy
    smtp_password: "{{ vault_smtp_password }}"
"""

RETURN = r"""
title:
  description: The headline the channels use.
  returned: always
  type: str
  sample: "Deployment failed and was rolled back: homeiq to prod on homeiq-1"
status:
  description: The event's status; null for an announcement.
  returned: always
  type: str
  sample: rolled_back
deployment_id:
  description: The event's deployment id; null for an announcement.
  returned: always
  type: str
  sample: deploy-20251126-101500
channels:
  description: Channels configured, in the order V(slack), V(webhook), V(email), V(step_summary).
  returned: always
  type: list
  elements: str
  sample: [slack, webhook, email]
would_send:
  description: Channels that send for this event (the e-mail only for failures unless O(email_always)); in check mode, what would have been sent.
  returned: always
  type: list
  elements: str
  sample: [slack, webhook, email]
sent:
  description: Channels sent.
  returned: always
  type: list
  elements: str
  sample: [slack, email]
failed_channels:
  description: Channels that failed.
  returned: always
  type: list
  elements: str
  sample: [webhook]
notifications:
  description: One entry per configured channel.
  returned: always
  type: list
  elements: dict
  contains:
    channel:
      description: V(slack), V(webhook), V(email) or V(step_summary).
      type: str
    sent:
      description: Whether the channel accepted the notification.
      type: bool
    error:
      description: Why it was not sent (an HTTP status, V(connection refused), a timeout); null when sent or skipped. Never holds a URL or a secret.
      type: str
    skipped:
      description: True when the channel is configured but not meant for this event (a success is not e-mailed by default).
      type: bool
    detail:
      description: What happened, for example V(HTTP 200) or V(accepted for 2 recipients).
      type: str
    attempts:
      description: Attempts made.
      type: int
    target:
      description: Where it went, secrets masked (V(https://hooks.slack.com/***), V(smtp://mail:587), the summary file).
      type: str
  sample:
    - channel: slack
      sent: true
      error: null
      skipped: false
      detail: HTTP 200
      attempts: 1
      target: https://hooks.slack.com/***
    - channel: webhook
      sent: false
      error: HTTP 500 after 2 attempts
      skipped: false
      detail: null
      attempts: 2
      target: https://hooks.example.com/***
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homeiq.deploy.plugins.module_utils._notify import (
    STATUSES, NotifyInputError, failure_message, run, warnings_for)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            event=dict(type="dict", required=True, options=dict(
                deployment_id=dict(type="str"),
                status=dict(type="str", choices=list(STATUSES)),
                commit=dict(type="str"),
                branch=dict(type="str"),
                project=dict(type="str"),
                environment=dict(type="str"),
                host=dict(type="str"),
                failing_checks=dict(type="list", elements="raw", default=[]),
                rollback=dict(type="dict"),
                report_path=dict(type="str"),
                notes=dict(type="str"),
                timestamp=dict(type="str"),
                rollout=dict(type="dict"),
                announcement=dict(type="dict", options=dict(
                    kind=dict(type="str", required=True),
                    text=dict(type="str", required=True),
                    title=dict(type="str"),
                    severity=dict(type="str"),
                )),
            )),
            slack_webhook_url=dict(type="str", no_log=True),
            webhook_url=dict(type="str", no_log=True),
            webhook_headers=dict(type="dict", default={}, no_log=True),
            email_to=dict(type="list", elements="str", default=[]),
            email_from=dict(type="str"),
            email_always=dict(type="bool", default=False),
            smtp_host=dict(type="str", default="localhost"),
            smtp_port=dict(type="int"),
            smtp_user=dict(type="str"),
            smtp_password=dict(type="str", no_log=True),
            smtp_starttls=dict(type="bool", default=False),
            smtp_ssl=dict(type="bool", default=False),
            step_summary=dict(type="bool", default=True),
            step_summary_path=dict(type="path"),
            commit_url=dict(type="str"),
            workflow_url=dict(type="str"),
            workflow_run_id=dict(type="str"),
            repository=dict(type="str"),
            timeout=dict(type="float", default=10),
            retries=dict(type="int", default=1),
            retry_delay=dict(type="float", default=1),
            validate_certs=dict(type="bool", default=True),
            fail_on_error=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if module.params["smtp_starttls"] and module.params["smtp_ssl"]:
        module.fail_json(msg="smtp_starttls and smtp_ssl are both set: use smtp_ssl for SMTPS (port 465) or "
                             "smtp_starttls to upgrade a plain connection (port 587), not both")
    try:
        result = run(module.params, check_mode=module.check_mode)
    except NotifyInputError as exc:
        module.fail_json(msg=str(exc))
    if result["failed_channels"] and module.params["fail_on_error"]:
        module.fail_json(msg=failure_message(result), **result)
    for warning in warnings_for(result):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
