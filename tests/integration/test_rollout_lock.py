"""The fleet-wide rollout lock (homeiq.deploy.rollout_lock) on SQLite and PostgreSQL alike: its
rules, a race of processes, and the controller side through real ansible-playbook runs."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "ledger"))
from ledger_support import (  # noqa: E402,F401 pytest fixtures  # pylint: disable=unused-import
    ledger,
    local_inventory,
    pg_dsn,
)

from ansible_collections.homeiq.deploy.plugins.module_utils import _rollout_lock as RL  # noqa: E402
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import LedgerError, now_us  # noqa: E402

from tests.integration.conftest import write_play  # noqa: E402

SCOPE = "prod/homeiq"
HOUR_US = 3600 * 1000000


def lock(ledger, state="acquired", rollout_id="deploy-20261127-040000-aaaa", now=None, **kw):
    return RL.run(dict(ledger.params, scope=SCOPE, state=state, rollout_id=rollout_id, ttl=kw.pop("ttl", 3600), **kw), now=now)


def test_rules(ledger):
    t0 = now_us()
    first = lock(ledger, now=t0, owner={"controller": "c1", "pid": 10})
    assert first["acquired"] and first["changed"] and first["holder"]["rollout_id"] == "deploy-20261127-040000-aaaa"
    assert first["holder"]["owner"] == {"controller": "c1", "pid": 10}
    # Another rollout is refused and told who holds the lock; nothing is written.
    other = lock(ledger, rollout_id="deploy-20261127-040100-bbbb", now=t0 + 1000000)
    assert other["acquired"] is False and not other["changed"]
    assert other["holder"]["rollout_id"] == "deploy-20261127-040000-aaaa" and other["holder"]["expired"] is False
    assert ledger.sql("SELECT rollout_id FROM rollout_locks") == [("deploy-20261127-040000-aaaa",)]
    # The holder again: still held, expiry renewed, start kept.
    again = lock(ledger, now=t0 + 2000000)
    assert again["acquired"] and not again["changed"] and again["holder"]["acquired_at"] == first["holder"]["acquired_at"]
    assert again["holder"]["expires_at"] > first["holder"]["expires_at"]
    # A named takeover, then a release by a rollout that does not hold it changes nothing.
    took = lock(ledger, rollout_id="deploy-20261127-040100-bbbb", takeover="deploy-20261127-040000-aaaa", now=t0 + 3000000)
    assert took["acquired"] and took["took_over"]["rollout_id"] == "deploy-20261127-040000-aaaa"
    kept = lock(ledger, state="released", now=t0 + 4000000)
    assert kept["released"] is False and kept["holder"]["rollout_id"] == "deploy-20261127-040100-bbbb"
    # Past its expiry a lock is taken over without being named.
    late = lock(ledger, rollout_id="deploy-20261127-060000-cccc", now=t0 + 3000000 + HOUR_US + 1)
    assert late["acquired"] and late["took_over"]["rollout_id"] == "deploy-20261127-040100-bbbb" and late["took_over"]["expired"]
    status = RL.run(dict(ledger.params, scope=SCOPE, state="status"))
    assert status["holder"]["rollout_id"] == "deploy-20261127-060000-cccc" and not status["changed"]
    released = lock(ledger, state="released", rollout_id="deploy-20261127-060000-cccc")
    assert released["released"] and released["changed"] and released["holder"] is None
    assert ledger.sql("SELECT count(*) FROM rollout_locks")[0][0] == 0
    # Other scopes are other locks.
    assert lock(ledger, now=t0)["acquired"]
    assert RL.run(dict(ledger.params, scope="staging/homeiq", rollout_id="deploy-20261127-040100-bbbb"))["acquired"]


def test_check_mode_writes_nothing(ledger):
    result = RL.run(dict(ledger.params, scope=SCOPE, rollout_id="deploy-1"), check_mode=True)
    assert result["acquired"] and result["changed"]
    assert not ledger.exists() or ledger.sql("SELECT count(*) FROM rollout_locks")[0][0] == 0


@pytest.mark.parametrize("params, needle", [
    ({"scope": ""}, "not a valid lock scope"),
    ({"scope": SCOPE, "ttl": 5}, "ttl must be a whole number of seconds of at least 60"),
    ({"scope": SCOPE, "rollout_id": "bad id!"}, "rollout_id 'bad id!' is not a valid deployment id"),
    ({"scope": SCOPE, "state": "held"}, "state 'held' is not one of"),
])
def test_bad_input_is_one_line(ledger, params, needle):
    with pytest.raises(LedgerError) as err:
        RL.run(dict({"rollout_id": "deploy-1"}, **ledger.params, **params))
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert not ledger.exists() or ledger.sql("SELECT count(*) FROM rollout_locks")[0][0] == 0


def _racer(params, barrier, index, results):
    barrier.wait(timeout=60)
    try:
        result = RL.run(dict(params, scope=SCOPE, rollout_id="deploy-20261127-0400%02d" % index))
        results.put((index, result["acquired"], result["holder"]["rollout_id"]))
    except Exception as exc:  # reported to the test, which fails on it
        results.put((index, "error", "%s: %s" % (type(exc).__name__, exc)))


def test_twelve_rollouts_racing_one_wins(ledger):
    """12 processes released at once onto a fresh ledger: exactly one takes the lock; every other
    one is refused and names that one."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(12), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(ledger.params, barrier, i, results)) for i in range(12)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    answers = [results.get(timeout=5) for dummy in procs]
    assert not [a for a in answers if a[1] == "error"], answers
    winners = [a for a in answers if a[1] is True]
    assert len(winners) == 1, answers
    winner_id = "deploy-20261127-0400%02d" % winners[0][0]
    assert all(a[2] == winner_id for a in answers), answers
    assert ledger.sql("SELECT rollout_id FROM rollout_locks") == [(winner_id,)]


def lock_play(tmp_path, ledger, **args):
    return write_play(tmp_path, [{"name": "Take the rollout lock", "homeiq.deploy.rollout_lock": dict(
        ledger.params, scope=SCOPE, rollout_id="deploy-20261127-050000-mine", **args), "register": "taken"}])


def dead_pid():
    """The pid of a process that has ended."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_controller_side_through_ansible(playbook, ledger, tmp_path):
    inventory = local_inventory(tmp_path / "hosts.yml")
    env = {"ANSIBLE_INJECT_INVOCATION": "1"}
    # Held by a rollout on another controller: one line naming it, nothing written.
    lock(ledger, rollout_id="deploy-20261127-040000-othr", owner={"controller": "ci-runner-7", "pid": 4242, "user": "deploy"})
    run = playbook(lock_play(tmp_path, ledger), inventory=inventory, verbosity=3, env=env)
    assert run.rc != 0
    msg = run.task("Take the rollout lock")["result"]["msg"]
    assert "\n" not in msg and "Traceback" not in run.output
    for part in ("rollout deploy-20261127-040000-othr holds the lock of prod/homeiq", "controller ci-runner-7",
                 "pid 4242", "-e rollout_lock_takeover=deploy-20261127-040000-othr"):
        assert part in msg, msg
    assert ledger.sql("SELECT rollout_id FROM rollout_locks") == [("deploy-20261127-040000-othr",)]
    if ledger.password:
        assert ledger.password not in run.output and ledger.password not in json.dumps(run.results)
    # Taken over when the operator names it.
    run = playbook(lock_play(tmp_path, ledger, takeover="deploy-20261127-040000-othr"), inventory=inventory)
    assert run.rc == 0, run.output[-3000:]
    result = run.task("Take the rollout lock")["result"]
    assert result["acquired"] and result["took_over"]["rollout_id"] == "deploy-20261127-040000-othr"
    owner = result["holder"]["owner"]
    assert owner["controller"] == socket.gethostname() and owner["pid"] > 1 and owner["pid_start"]
    # The holder's ansible-playbook is gone: the next run on this controller takes over, with a warning.
    lock(ledger, state="released", rollout_id="deploy-20261127-050000-mine")
    lock(ledger, rollout_id="deploy-20261127-040000-dead",
         owner={"controller": socket.gethostname(), "pid": dead_pid(), "pid_start": "1", "user": "root"})
    run = playbook(lock_play(tmp_path, ledger), inventory=inventory)
    assert run.rc == 0, run.output[-3000:]
    assert "took over the rollout lock of prod/homeiq from rollout deploy-20261127-040000-dead" in run.output
    assert "process on this controller has ended" in run.output
    # A live holder on this controller (this test's own process) is not taken over.
    lock(ledger, state="released", rollout_id="deploy-20261127-050000-mine")
    lock(ledger, rollout_id="deploy-20261127-040000-live",
         owner={"controller": socket.gethostname(), "pid": os.getpid(), "pid_start": "", "user": "root"})
    run = playbook(lock_play(tmp_path, ledger), inventory=inventory)
    assert run.rc != 0 and "rollout deploy-20261127-040000-live holds the lock" in run.task("Take the rollout lock")["result"]["msg"]
