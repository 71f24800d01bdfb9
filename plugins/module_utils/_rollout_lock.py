# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: the fleet-wide rollout lock, kept in the deployment ledger.

Not a public API. One row of ``rollout_locks`` per scope (environment and project) while a
rollout runs, so two rollouts of one environment never overlap even when they start from two
controllers; the ledger is the one place a fleet already shares. The host lock of
``_lock`` still guards each host's project.

Rules (each in one write transaction, serialised per scope):

- acquire: a free scope is taken; the same rollout id takes it again (its expiry is renewed);
  a lock past its expiry, or one named by ``takeover``, is taken over and the old holder is
  returned; any other holder is returned with ``acquired`` false, and nothing is written;
- release: removes the lock only when the given rollout id holds it;
- status: reads the holder.

Whether a holder is still alive is not known here (the module may run on any host): the action
plugin, which runs on the controller, decides that and asks for a takeover.
"""
from __future__ import annotations

import json

from ansible_collections.homeiq.deploy.plugins.module_utils._ledger import open_store, reading, writing
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import (
    LedgerError,
    check_deployment_id,
    format_time,
    now_us,
)

STATES = ("acquired", "released", "status")
_COLUMNS = ("scope", "rollout_id", "owner", "acquired_at_us", "expires_at_us")
_SCOPE_MAX = 200


def check_scope(scope):
    if not isinstance(scope, str) or not scope.strip() or len(scope) > _SCOPE_MAX:
        raise LedgerError("scope %r is not a valid lock scope: give the environment and project, such as prod/homeiq "
                          "(at most %d characters)" % (scope, _SCOPE_MAX))
    return scope


def check_ttl(ttl):
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 60:
        raise LedgerError("ttl must be a whole number of seconds of at least 60, not %r: give the longest time "
                          "a rollout may run" % (ttl,))
    return ttl


def public(row, now):
    """A lock row as the module returns it (times as ISO 8601, owner as a mapping)."""
    if row is None:
        return None
    try:
        owner = json.loads(row["owner"])
    except ValueError:
        owner = {"text": row["owner"]}
    return {
        "scope": row["scope"],
        "rollout_id": row["rollout_id"],
        "owner": owner,
        "acquired_at": format_time(row["acquired_at_us"]),
        "expires_at": format_time(row["expires_at_us"]),
        "expired": row["expires_at_us"] <= now,
    }


def _read(store, scope):
    values = store.fetchone("SELECT %s FROM rollout_locks WHERE scope = :scope" % ", ".join(_COLUMNS), {"scope": scope})
    if values is None:
        return None
    row = dict(zip(_COLUMNS, values))
    row["acquired_at_us"] = int(row["acquired_at_us"])
    row["expires_at_us"] = int(row["expires_at_us"])
    return row


def _acquire(store, params, now):
    scope, rollout_id = params["scope"], params["rollout_id"]
    store.lock_deployment("rollout-lock:" + scope)
    held = _read(store, scope)
    row = {"scope": scope, "rollout_id": rollout_id, "owner": json.dumps(params.get("owner") or {}, sort_keys=True),
           "acquired_at_us": now, "expires_at_us": now + params["ttl"] * 1000000}
    if held is None:
        store.execute("INSERT INTO rollout_locks (%s) VALUES (%s)" % (", ".join(_COLUMNS), ", ".join(":" + c for c in _COLUMNS)), row)
        return {"acquired": True, "changed": True, "holder": row, "took_over": None}
    if held["rollout_id"] == rollout_id:
        # The same rollout again (a re-run of its first play): keep its start, renew its expiry.
        row["acquired_at_us"] = held["acquired_at_us"]
        store.execute("UPDATE rollout_locks SET owner = :owner, expires_at_us = :expires_at_us WHERE scope = :scope", row)
        return {"acquired": True, "changed": False, "holder": row, "took_over": None}
    if held["expires_at_us"] <= now or params.get("takeover") == held["rollout_id"]:
        store.execute("UPDATE rollout_locks SET rollout_id = :rollout_id, owner = :owner, acquired_at_us = :acquired_at_us, "
                      "expires_at_us = :expires_at_us WHERE scope = :scope", row)
        return {"acquired": True, "changed": True, "holder": row, "took_over": held}
    return {"acquired": False, "changed": False, "holder": held, "took_over": None}


def _release(store, params):
    scope, rollout_id = params["scope"], params["rollout_id"]
    store.lock_deployment("rollout-lock:" + scope)
    held = _read(store, scope)
    if held is None:
        return {"released": True, "changed": False, "holder": None}
    if held["rollout_id"] != rollout_id:
        return {"released": False, "changed": False, "holder": held}
    store.execute("DELETE FROM rollout_locks WHERE scope = :scope AND rollout_id = :rollout_id",
                  {"scope": scope, "rollout_id": rollout_id})
    return {"released": True, "changed": True, "holder": None}


def run(params, check_mode=False, now=None):
    """rollout_lock: acquires, releases or reads the lock of one scope; returns the module's result."""
    now = now_us() if now is None else now
    state = params.get("state") or "acquired"
    if state not in STATES:
        raise LedgerError("state %r is not one of %s" % (state, ", ".join(STATES)))
    params = dict(params, scope=check_scope(params.get("scope")), ttl=check_ttl(params.get("ttl", 21600)))
    if state != "status":
        check_deployment_id(params.get("rollout_id"), "rollout_id")
    if params.get("takeover"):
        check_deployment_id(params["takeover"], "takeover")
    store = open_store(params.get("backend") or "sqlite", params.get("path"), params.get("dsn"), params.get("timeout") or 30)
    if state == "status":
        with reading(store) as source:  # an older ledger is read through its migration
            held = _read(source, params["scope"])
        return {"changed": False, "holder": public(held, now)}
    with writing(store, check_mode) as (target, migrated):
        result = _acquire(target, params, now) if state == "acquired" else _release(target, params)
    result["holder"] = public(result["holder"], now)
    if "took_over" in result:
        result["took_over"] = public(result["took_over"], now)
    result["changed"] = result["changed"] or bool(migrated)
    return result
