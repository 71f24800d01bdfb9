#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_ledger
short_description: Record a deployment or rollback in the deployment ledger
version_added: 0.1.0
description:
  - Records one deployment (or rollback) in the ledger that rollback, reports and metrics read with
    M(homeiq.deploy.deploy_ledger_info), one row per O(deployment_id).
  - The first record of an id inserts it; O(started_at) defaults to now, O(status) to V(in_progress) and
    O(kind) to V(deploy).
  - A later record changes only the fields it gives. A final status (V(success), V(failed), V(rolled_back)) sets
    O(finished_at) (default now) and so the duration, unless the deployment already has a finish time.
    A finished deployment never goes back to V(in_progress).
  - Recording the same thing twice changes nothing and reports C(changed=false).
  - With O(import_from), imports the runbook's own deployments table instead (its SQLite file or PostgreSQL
    table), so earlier history is kept; importing twice changes nothing.
  - The ledger is one SQLite file (WAL, a busy timeout, immediate write transactions; concurrent writers queue)
    or a PostgreSQL database shared by a fleet. Its schema is versioned; a ledger made by an older version is
    migrated on its first write.
author:
  - HomeIQ maintainers (!UNKNOWN)
requirements:
  - psycopg 3 (C(psycopg[binary])) on the host that runs the module, for O(backend=postgres) only
extends_documentation_fragment:
  - homeiq.deploy.ledger
options:
  deployment_id:
    description:
      - Id of the deployment, by convention C(deploy-YYYYMMDD-HHMMSS) in UTC with a suffix where needed for
        uniqueness. Letters, digits and the characters C(._:@+-), at most 128.
      - Required unless O(import_from) is given.
    type: str
  status:
    description: Status of the deployment. Defaults to V(in_progress) when the id is first recorded.
    type: str
    choices: [in_progress, success, failed, rolled_back]
  kind:
    description: V(deploy) or V(rollback). Defaults to V(deploy) when the id is first recorded.
    type: str
    choices: [deploy, rollback]
  rollback_of:
    description: For O(kind=rollback), the id of the deployment the rollback undoes.
    type: str
  environment:
    description: Environment, such as V(prod). Metrics and recovery are measured per environment, project and host.
    type: str
  project:
    description: Compose project name.
    type: str
  host:
    description: Host the deployment ran on.
    type: str
  commit:
    description: Commit deployed.
    type: str
  branch:
    description: Branch deployed.
    type: str
  commit_time:
    description: ISO 8601 time of the commit, for lead time (commit to running).
    type: str
  images:
    description:
      - Each service's image after the deployment, as the engine's full image ID (C(sha256:) and 64 hex digits).
        What a rollback to this deployment restores.
      - For a stack of compose projects, nested by project, project name to such a mapping.
    type: dict
  services_count:
    description: Number of services deployed.
    type: int
  passed_checks:
    description: Number of checks that passed.
    type: int
  failed_checks:
    description: Number of checks that failed.
    type: int
  performer:
    description: Who or what ran the deployment.
    type: str
  notes:
    description: Free text.
    type: str
  started_at:
    description: ISO 8601 start time (naive means UTC). Default now, on the first record of the id.
    type: str
  finished_at:
    description: ISO 8601 finish time, with a final O(status). Default now, when a final status is first recorded.
    type: str
  import_from:
    description:
      - Import the runbook's deployments table (columns C(id), C(timestamp), C(status), C(commit_sha), C(branch),
        C(duration_seconds), C(services_count), C(passed_checks), C(failed_checks), C(rollback_performed), C(notes))
        instead of recording one deployment. O(environment), O(project), O(host) and O(performer) apply to every row.
      - Status C(failure) becomes V(failed), or V(rolled_back) when C(rollback_performed) is set; C(timestamp)
        (the runbook's last write) becomes the finish time and C(timestamp - duration_seconds) the start.
    type: dict
    suboptions:
      backend:
        description: Where the runbook's table is.
        type: str
        choices: [sqlite, postgres]
        default: sqlite
      path:
        description: The runbook's SQLite file (C(data/deployments.db) in its repository).
        type: path
      dsn:
        description: PostgreSQL connection string of the runbook's database. Never shown.
        type: str
      table:
        description: Table name (C(schema.table) allowed).
        type: str
        default: deployments
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: The record is planned in a transaction that is rolled back; a ledger file that does not exist is not created.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details: Before and after are the record (before is empty for a new id).
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - Times are returned in UTC as ISO 8601 with a C(Z). They are stored as integer microseconds since the epoch.
  - The first write to a ledger made by an older version of this collection migrates its schema, and reports a change.
seealso:
  - module: homeiq.deploy.deploy_ledger_info
  - name: Ledger operator guide
    description: docs/ledger.md in the collection.
    link: https://example.invalid/homeiq/deploy/docs/ledger.md
"""

EXAMPLES = r"""
- name: Record that a deployment started
  homeiq.deploy.deploy_ledger:
    deployment_id: deploy-20261126-231500
    status: in_progress
    environment: prod
    project: homeiq
    host: "{{ inventory_hostname }}"
    commit: 4f2a9c1
    branch: main

- name: Record its success with the images it runs
  homeiq.deploy.deploy_ledger:
    deployment_id: deploy-20261126-231500
    status: success
    images: "{{ deployed.current_images }}"
    services_count: 5
    passed_checks: 12
    failed_checks: 0

- name: Record a rollback in a shared PostgreSQL ledger
  homeiq.deploy.deploy_ledger:
    backend: postgres
    dsn: "{{ vault_ledger_dsn }}"
    deployment_id: deploy-20261126-232210-rollback
    kind: rollback
    rollback_of: deploy-20261126-232010
    status: success

- name: Import the runbook's history
  homeiq.deploy.deploy_ledger:
    import_from:
      path: /srv/homeiq/data/deployments.db
    environment: prod
    project: homeiq
    host: "{{ inventory_hostname }}"
"""

RETURN = r"""
record:
  description: The deployment as stored after this run (as it would be, in check mode); null with O(import_from).
  returned: always
  type: dict
  contains:
    deployment_id:
      description: Id of the deployment.
      type: str
      sample: deploy-20261126-231500
    kind:
      description: V(deploy) or V(rollback).
      type: str
    status:
      description: V(in_progress), V(success), V(failed) or V(rolled_back).
      type: str
    rollback_of:
      description: Id of the deployment a rollback undoes.
      type: str
    environment:
      description: Environment, or null.
      type: str
    project:
      description: Project, or null.
      type: str
    host:
      description: Host, or null.
      type: str
    commit:
      description: Commit.
      type: str
    branch:
      description: Branch.
      type: str
    commit_time:
      description: Commit time, ISO 8601 UTC.
      type: str
    images:
      description: Service name to full image ID; for a stack, project name to such a mapping.
      type: dict
      sample: {"web": "sha256:3f5e0c8b7a6d4e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f"}
    services_count:
      description: Number of services.
      type: int
    passed_checks:
      description: Checks passed.
      type: int
    failed_checks:
      description: Checks failed.
      type: int
    performer:
      description: Who ran it.
      type: str
    notes:
      description: Notes.
      type: str
    started_at:
      description: Start, ISO 8601 UTC.
      type: str
      sample: "2026-11-26T23:15:00Z"
    finished_at:
      description: Finish, ISO 8601 UTC; null while in progress.
      type: str
    duration_s:
      description: Seconds from start to finish; null while in progress.
      type: float
      sample: 93.5
imported:
  description: With O(import_from), what the import did.
  returned: when import_from is given
  type: dict
  contains:
    rows:
      description: Rows read from the runbook's table.
      type: int
    inserted:
      description: Deployments added to the ledger.
      type: int
    updated:
      description: Deployments whose record changed.
      type: int
    unchanged:
      description: Rows already in the ledger as they are.
      type: int
    deployment_ids:
      description: Ids inserted or updated.
      type: list
      elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homeiq.deploy.plugins.module_utils._ledger import record
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import LEDGER_ARGUMENT_SPEC, LedgerError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **LEDGER_ARGUMENT_SPEC,
            deployment_id=dict(type="str"),
            status=dict(type="str", choices=["in_progress", "success", "failed", "rolled_back"]),
            kind=dict(type="str", choices=["deploy", "rollback"]),
            rollback_of=dict(type="str"),
            environment=dict(type="str"),
            project=dict(type="str"),
            host=dict(type="str"),
            commit=dict(type="str"),
            branch=dict(type="str"),
            commit_time=dict(type="str"),
            images=dict(type="dict"),
            services_count=dict(type="int"),
            passed_checks=dict(type="int", no_log=False),
            failed_checks=dict(type="int", no_log=False),
            performer=dict(type="str"),
            notes=dict(type="str"),
            started_at=dict(type="str"),
            finished_at=dict(type="str"),
            import_from=dict(type="dict", options=dict(
                backend=dict(type="str", choices=["sqlite", "postgres"], default="sqlite"),
                path=dict(type="path"),
                dsn=dict(type="str", no_log=True),
                table=dict(type="str", default="deployments"),
            )),
        ),
        required_one_of=[("deployment_id", "import_from")],
        mutually_exclusive=[("deployment_id", "import_from")],
        required_if=[("backend", "postgres", ("dsn",))],
        supports_check_mode=True,
    )
    try:
        result = record(module.params, check_mode=module.check_mode)
    except LedgerError as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
