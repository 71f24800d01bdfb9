#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_lock
short_description: Take or release the fleet-wide lock of a rollout in the deployment ledger
version_added: 0.1.0
description:
  - Keeps one lock per O(scope) (an environment and project, such as C(prod/homeiq)) in the ledger that
    M(homeiq.deploy.deploy_ledger) writes, so two rollouts of the same environment never overlap, even when they
    start from two controllers. With the PostgreSQL backend the whole fleet shares it.
  - V(acquired) takes a free lock, or renews it when O(rollout_id) already holds it. A lock past its expiry
    (O(ttl) after it was taken) is taken over, and so is the lock of O(takeover). Held by another rollout, the
    task fails with one line naming the holder, when it started, and how to release it; nothing is written.
  - The controller side of the module (an action plugin) records who holds the lock (controller host name,
    process id and its start time, user). A holder on the same controller whose process is gone (a killed
    C(ansible-playbook)) is taken over with a warning.
  - V(released) removes the lock when O(rollout_id) holds it, and changes nothing otherwise (with a warning when
    another rollout holds it). V(status) only reads it.
  - The ledger's schema gains the lock table (version 3) on its first write.
author:
  - HomeIQ maintainers (!UNKNOWN)
requirements:
  - psycopg 3 (C(psycopg[binary])) on the host that runs the module, for O(backend=postgres) only
extends_documentation_fragment:
  - homeiq.deploy.ledger
options:
  scope:
    description: What the lock covers, by convention C(<environment>/<project>). At most 200 characters.
    type: str
    required: true
  rollout_id:
    description:
      - Id of the rollout taking or releasing the lock (the deployment id shared by the rollout's hosts).
      - Required unless O(state=status).
    type: str
  state:
    description: Take the lock, release it, or read who holds it.
    type: str
    choices: [acquired, released, status]
    default: acquired
  ttl:
    description:
      - Seconds after which a lock counts as abandoned and the next rollout takes it over. Give the longest time
        a rollout may run. At least 60.
    type: int
    default: 21600
  takeover:
    description:
      - Rollout id of a holder known to be over (a run that was killed on another controller). Its lock is taken
        over; a lock held by any other rollout is not.
    type: str
  owner:
    description:
      - Who takes the lock. Filled in by the controller side (keys C(controller), C(pid), C(pid_start), C(user));
        given keys win.
    type: dict
attributes:
  check_mode:
    support: full
    description: Reports whether the lock would be taken or released; writes nothing.
  diff_mode:
    support: none
    description: No diff is returned.
  action:
    support: full
    description: The controller side records the owner and decides whether a holder on this controller is still alive.
"""

EXAMPLES = r"""
- name: Take the rollout lock of prod
  homeiq.deploy.rollout_lock:
    backend: postgres
    dsn: "{{ ledger_dsn }}"
    scope: prod/homeiq
    rollout_id: deploy-20261127-031500-ab12
  run_once: true

- name: Release it
  homeiq.deploy.rollout_lock:
    backend: postgres
    dsn: "{{ ledger_dsn }}"
    scope: prod/homeiq
    rollout_id: deploy-20261127-031500-ab12
    state: released
  run_once: true
"""

RETURN = r"""
acquired:
  description: With O(state=acquired), whether this rollout holds the lock now.
  returned: state is acquired
  type: bool
released:
  description: With O(state=released), whether the lock is free of this rollout now.
  returned: state is released
  type: bool
holder:
  description: The lock as it is after the task (with V(acquired) held by another rollout, that holder); null when free.
  returned: always
  type: dict
  contains:
    scope:
      description: The lock's scope.
      type: str
    rollout_id:
      description: Rollout holding it.
      type: str
    owner:
      description: Who took it (controller, pid, pid_start, user).
      type: dict
    acquired_at:
      description: When it was taken (ISO 8601, UTC).
      type: str
    expires_at:
      description: When it counts as abandoned.
      type: str
    expired:
      description: Whether that time has passed.
      type: bool
took_over:
  description: With O(state=acquired), the holder whose lock was taken over (expired, or named by O(takeover)).
  returned: state is acquired
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import LEDGER_ARGUMENT_SPEC, LedgerError
from ansible_collections.homeiq.deploy.plugins.module_utils._rollout_lock import run


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **LEDGER_ARGUMENT_SPEC,
            scope=dict(type="str", required=True),
            rollout_id=dict(type="str"),
            state=dict(type="str", choices=["acquired", "released", "status"], default="acquired"),
            ttl=dict(type="int", default=21600),
            takeover=dict(type="str"),
            owner=dict(type="dict"),
        ),
        required_if=[("backend", "postgres", ("dsn",)), ("state", "acquired", ("rollout_id",)),
                     ("state", "released", ("rollout_id",))],
        supports_check_mode=True,
    )
    try:
        result = run(module.params, check_mode=module.check_mode)
    except LedgerError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
