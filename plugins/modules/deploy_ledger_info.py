#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_ledger_info
short_description: Read the deployment ledger - history, one deployment, the last good one, metrics, a report
version_added: 0.1.0
description:
  - Reads the ledger that M(homeiq.deploy.deploy_ledger) writes. Never writes to it; a SQLite ledger file that
    does not exist reads as an empty ledger (with a warning) and is not created.
  - V(list) gives deployments newest first; V(get) one deployment; V(last_success) the newest successful deployment
    with its images, which is what a rollback to "previous" restores; V(metrics) the metrics below; V(report)
    the metrics, the window's history and a self-contained HTML page (inline CSS and SVG, nothing fetched).
  - >-
    Metrics are over records of kind deploy started in the window (scope filters applied), unless said otherwise:
    C(total); C(successful); C(failed) (failed or rolled back); C(in_progress) (in no rate);
    C(success_rate) and C(change_failure_rate) over finished deployments; C(rollbacks) (records of kind rollback)
    and C(rollback_rate) (rollbacks / finished deployments); C(avg_duration_s) over finished deployments;
    C(mttr_s) and C(median_recovery_s), where the recovery of a failed deployment is the time from its start to
    the finish of the first successful record (deploy or rollback) of the same environment, project and host that
    finished after it started, with failures not recovered yet counted in C(unrecovered) and left out;
    C(recent_7d) (deployments started in the last 7 days, whatever the window);
    C(deployment_frequency_per_day) (successful deployments / window days); C(lead_time_median_s) (median of
    finish - commit_time over successful deployments with a commit_time).
  - Rates are fractions from 0 to 1 and null where nothing divides; numbers are not rounded.
author:
  - HomeIQ maintainers (!UNKNOWN)
requirements:
  - psycopg 3 (C(psycopg[binary])) on the host that runs the module, for O(backend=postgres) only
extends_documentation_fragment:
  - homeiq.deploy.ledger
options:
  query:
    description: What to read.
    type: str
    choices: [list, get, last_success, metrics, report]
    default: list
  environment:
    description: Only records of this environment.
    type: str
  project:
    description: Only records of this project.
    type: str
  host:
    description: Only records of this host.
    type: str
  status:
    description: With O(query=list), only records with this status.
    type: str
    choices: [in_progress, success, failed, rolled_back]
  since:
    description:
      - ISO 8601 time. With O(query=list), only records started at or after it. With O(query=metrics) or
        O(query=report) it replaces the start of the window (its length becomes now - since).
    type: str
  limit:
    description: With O(query=list) or O(query=report), at most this many records, newest first; V(0) for all.
    type: int
    default: 10
  deployment_id:
    description:
      - With O(query=get), the deployment to read.
      - With O(query=last_success), look only before this deployment (by start time), and by default in its
        environment, project and host.
    type: str
  window_days:
    description: With O(query=metrics) or O(query=report), the window in days, ending now.
    type: int
    default: 30
  title:
    description: With O(query=report), the title of the page.
    type: str
    default: Deployment ledger
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - A ledger made by an older version of this collection is read through its schema migration inside a transaction
    that is rolled back, so reading never changes it.
seealso:
  - module: homeiq.deploy.deploy_ledger
  - name: Ledger operator guide
    description: docs/ledger.md in the collection.
    link: https://example.invalid/homeiq/deploy/docs/ledger.md
"""

EXAMPLES = r"""
- name: The last ten deployments in prod
  homeiq.deploy.deploy_ledger_info:
    environment: prod

- name: What a rollback of the current deployment would restore
  homeiq.deploy.deploy_ledger_info:
    query: last_success
    deployment_id: "{{ deploy_deployment_id }}"
  register: previous

- name: Metrics of the last 90 days
  homeiq.deploy.deploy_ledger_info:
    query: metrics
    window_days: 90
  register: ledger

- name: Show the change failure rate
  ansible.builtin.debug:
    msg: "{{ ledger.metrics.change_failure_rate }}"
"""

RETURN = r"""
deployments:
  description:
    - With O(query=list), the deployments found, newest first; with O(query=report), the window's history.
    - With O(query=get) or O(query=last_success), the one deployment found, if any. Each item is a record as
      M(homeiq.deploy.deploy_ledger) returns it.
  returned: always
  type: list
  elements: dict
  sample:
    - deployment_id: deploy-20261126-231500
      kind: deploy
      status: success
      rollback_of: null
      environment: prod
      project: homeiq
      host: box1
      commit: 4f2a9c1
      branch: main
      commit_time: "2026-11-26T22:58:00Z"
      images: {"web": "sha256:3f5e0c8b7a6d4e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f"}
      services_count: 5
      passed_checks: 12
      failed_checks: 0
      performer: ci
      notes: null
      started_at: "2026-11-26T23:15:00Z"
      finished_at: "2026-11-26T23:16:33.500000Z"
      duration_s: 93.5
deployment:
  description: With O(query=get) or O(query=last_success), the record found; null when there is none.
  returned: always
  type: dict
metrics:
  description: With O(query=metrics) or O(query=report), the metrics (see the description for definitions); else empty.
  returned: always
  type: dict
  contains:
    total:
      description: Deployments (kind deploy) started in the window.
      type: int
    successful:
      description: Of them, with status success.
      type: int
    failed:
      description: Of them, with status failed or rolled_back.
      type: int
    in_progress:
      description: Of them, not finished.
      type: int
    success_rate:
      description: successful / (successful + failed); null when none finished.
      type: float
    change_failure_rate:
      description: failed / (successful + failed); null when none finished.
      type: float
    rollbacks:
      description: Records of kind rollback started in the window.
      type: int
    rollback_rate:
      description: rollbacks / finished deployments; null when none finished.
      type: float
    avg_duration_s:
      description: Mean duration of finished deployments in seconds; null when none finished.
      type: float
    mttr_s:
      description: Mean recovery time in seconds over recovered failures; null when none.
      type: float
    median_recovery_s:
      description: Median recovery time in seconds; null when none.
      type: float
    recovered:
      description: Failures with a recovery.
      type: int
    unrecovered:
      description: Failures not recovered yet.
      type: int
    recent_7d:
      description: Deployments started in the last 7 days.
      type: int
    deployment_frequency_per_day:
      description: Successful deployments per day of the window.
      type: float
    lead_time_median_s:
      description: Median seconds from commit_time to finish over successful deployments; null when none has a commit_time.
      type: float
    window_days:
      description: Length of the window in days.
      type: float
    window_start:
      description: Start of the window, ISO 8601 UTC.
      type: str
    window_end:
      description: End of the window (now), ISO 8601 UTC.
      type: str
report:
  description: With O(query=report), the HTML page (one self-contained document).
  returned: when query is report
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homeiq.deploy.plugins.module_utils._ledger import info
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import LEDGER_ARGUMENT_SPEC, LedgerError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **LEDGER_ARGUMENT_SPEC,
            query=dict(type="str", choices=["list", "get", "last_success", "metrics", "report"], default="list"),
            environment=dict(type="str"),
            project=dict(type="str"),
            host=dict(type="str"),
            status=dict(type="str", choices=["in_progress", "success", "failed", "rolled_back"]),
            since=dict(type="str"),
            limit=dict(type="int", default=10),
            deployment_id=dict(type="str"),
            window_days=dict(type="int", default=30),
            title=dict(type="str", default="Deployment ledger"),
        ),
        required_if=[("backend", "postgres", ("dsn",)), ("query", "get", ("deployment_id",))],
        supports_check_mode=True,
    )
    try:
        result = info(module.params)
    except LedgerError as exc:
        module.fail_json(msg=str(exc))
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
