# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: what the deploy_ledger and deploy_ledger_info modules do.

Not a public API. ``record()`` and ``info()`` take the modules' parameters and return their
results; everything they need (stores, metrics, report, import) lives in the other
``_ledger_*`` module_utils.

Recording rules (one row per deployment id):

- the first record of an id inserts it: ``started_at`` is the given time or now, ``status``
  defaults to in_progress, ``kind`` to deploy;
- a later record changes only the fields it gives; a final status (success, failed,
  rolled_back) sets ``finished_at`` (the given time, else now) when the row has none yet, and a
  finished deployment never goes back to in_progress;
- a record that gives nothing new changes nothing (``changed`` false), so recording is idempotent.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import (
    BACKENDS,
    FINAL_STATUSES,
    KINDS,
    STATUSES,
    LedgerError,
    check_count,
    check_deployment_id,
    check_images,
    default_sqlite_path,
    format_time,
    now_us,
    parse_time,
    seconds,
)
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_store import (
    COLUMNS,
    LATEST,
    images_text,
    images_value,
)
from ansible_collections.homeiq.deploy.plugins.module_utils import _ledger_metrics as metrics_sql
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_sqlite import SQLiteStore
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_postgres import PostgresStore

# option name -> column, for the options stored as they are given
_TEXT_FIELDS = {
    "rollback_of": "rollback_of",
    "environment": "environment",
    "project": "project",
    "host": "host",
    "commit": "commit_sha",
    "branch": "branch",
    "performer": "performer",
    "notes": "notes",
}
_COUNT_FIELDS = ("services_count", "passed_checks", "failed_checks")
QUERIES = ("list", "get", "last_success", "metrics", "report")


def open_store(backend="sqlite", path=None, dsn=None, timeout=30):
    """The store of one backend; nothing is opened until it is used."""
    if backend == "sqlite":
        return SQLiteStore(os.path.expanduser(path) if path else default_sqlite_path(), timeout)
    if backend == "postgres":
        return PostgresStore(dsn, timeout)
    raise LedgerError("backend %r is not known: use one of %s" % (backend, ", ".join(BACKENDS)))


# -- recording ---------------------------------------------------------------------------------


def _given(params):
    """The columns a record sets, validated, from the options that are not None."""
    cols = {}
    for option, column in _TEXT_FIELDS.items():
        value = params.get(option)
        if value is not None:
            cols[column] = str(value)
    if params.get("status") is not None:
        if params["status"] not in STATUSES:
            raise LedgerError("status %r is not one of %s" % (params["status"], ", ".join(STATUSES)))
        cols["status"] = params["status"]
    if params.get("kind") is not None:
        if params["kind"] not in KINDS:
            raise LedgerError("kind %r is not one of %s" % (params["kind"], ", ".join(KINDS)))
        cols["kind"] = params["kind"]
    if cols.get("rollback_of") is not None:
        check_deployment_id(cols["rollback_of"], "rollback_of")
    if params.get("commit_time") is not None:
        cols["commit_time_us"] = parse_time(params["commit_time"], "commit_time")
    if params.get("images") is not None:
        cols["images"] = images_text(check_images(params["images"]))
    for option in _COUNT_FIELDS:
        if params.get(option) is not None:
            cols[option] = check_count(params[option], option)
    return cols


def plan_record(before, params, now):
    """(row after, changed columns) for recording `params` over the stored row `before` (or None)."""
    deployment_id = check_deployment_id(params.get("deployment_id"))
    given = _given(params)
    started = parse_time(params.get("started_at"), "started_at")
    finished = parse_time(params.get("finished_at"), "finished_at")

    if before is None:
        row = dict.fromkeys(COLUMNS)
        row.update(deployment_id=deployment_id, kind="deploy", status="in_progress", environment="", project="", host="")
        row.update(given)
        row["started_at_us"] = now if started is None else started
        if row["status"] in FINAL_STATUSES:
            row["finished_at_us"] = now if finished is None else finished
        elif finished is not None:
            raise LedgerError("finished_at is given but status is in_progress: give the final status with it")
        changes = {k: v for k, v in row.items() if v is not None and k != "deployment_id"}
    else:
        row = dict(before)
        changes = {k: v for k, v in given.items() if row.get(k) != v}
        status = given.get("status", row["status"])
        if row["status"] in FINAL_STATUSES and status == "in_progress":
            raise LedgerError(
                "deployment %s already finished (%s) and cannot go back to in_progress: record a new attempt "
                "under a new deployment id" % (deployment_id, row["status"]))
        if started is not None and started != row["started_at_us"]:
            changes["started_at_us"] = started
        if finished is not None:
            if status not in FINAL_STATUSES:
                raise LedgerError("finished_at is given but status is in_progress: give the final status with it")
            if finished != row["finished_at_us"]:
                changes["finished_at_us"] = finished
        elif status in FINAL_STATUSES and row["finished_at_us"] is None:
            changes["finished_at_us"] = now
        row.update(changes)

    if row["finished_at_us"] is not None and row["finished_at_us"] < row["started_at_us"]:
        raise LedgerError(
            "deployment %s would finish (%s) before it started (%s): check started_at and finished_at"
            % (deployment_id, format_time(row["finished_at_us"]), format_time(row["started_at_us"])))
    if row["rollback_of"] is not None and row["kind"] != "rollback":
        raise LedgerError("rollback_of is only for records of kind rollback: add kind: rollback")
    if row["rollback_of"] == deployment_id:
        raise LedgerError("deployment %s cannot be a rollback of itself: give the id of the deployment it undoes"
                          % deployment_id)
    if changes:
        row["updated_at_us"] = now
        changes["updated_at_us"] = now
    return row, changes


def public(row):
    """A stored row as the modules return it (times in ISO 8601 UTC, images as a dict)."""
    if row is None:
        return None
    finished = row["finished_at_us"]
    return {
        "deployment_id": row["deployment_id"],
        "kind": row["kind"],
        "status": row["status"],
        "rollback_of": row["rollback_of"],
        "environment": row["environment"] or None,
        "project": row["project"] or None,
        "host": row["host"] or None,
        "commit": row["commit_sha"],
        "branch": row["branch"],
        "commit_time": format_time(row["commit_time_us"]),
        "images": images_value(row["images"]),
        "services_count": row["services_count"],
        "passed_checks": row["passed_checks"],
        "failed_checks": row["failed_checks"],
        "performer": row["performer"],
        "notes": row["notes"],
        "started_at": format_time(row["started_at_us"]),
        "finished_at": format_time(finished),
        "duration_s": None if finished is None else seconds(finished - row["started_at_us"]),
    }


@contextmanager
def writing(store, check_mode):
    """A write transaction on a migrated ledger (rolled back in check mode); yields versions migrated.

    In check mode a ledger file that does not exist yet is not created: an empty in-memory ledger
    stands in for it.
    """
    if check_mode and not store.exists():
        stand_in = SQLiteStore(":memory:")
        try:
            stand_in.connect(create=True)
            with stand_in.transaction(write=True, commit=False):
                yield stand_in, stand_in.migrate()
        finally:
            stand_in.close()
        return
    try:
        store.connect(create=not check_mode)
        with store.transaction(write=True, commit=not check_mode):
            yield store, store.migrate()
    finally:
        store.close()


def write_record(store, params, check_mode, now):
    """Records one deployment in an open write transaction; returns (before, after, changed)."""
    deployment_id = check_deployment_id(params.get("deployment_id"))
    store.lock_deployment(deployment_id)
    before = store.get(deployment_id)
    after, changes = plan_record(before, params, now)
    if changes and not check_mode:
        if before is None:
            store.insert(after)
        else:
            store.update(deployment_id, changes)
    return before, after, bool(changes)


def record(params, check_mode=False, now=None):
    """deploy_ledger: records one deployment, or imports the runbook's table with `import_from`."""
    now = now_us() if now is None else now
    store = open_store(params.get("backend") or "sqlite", params.get("path"), params.get("dsn"), params.get("timeout") or 30)
    if params.get("import_from"):
        from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_import import import_runbook
        with writing(store, check_mode) as (target, migrated):
            imported = import_runbook(target, params["import_from"], params, check_mode, now)
        changed = bool(migrated) or bool(imported["inserted"] or imported["updated"])
        return {"changed": changed, "record": None, "imported": imported}
    # Bad input fails before the ledger is touched.
    check_deployment_id(params.get("deployment_id"))
    _given(params)
    parse_time(params.get("started_at"), "started_at")
    parse_time(params.get("finished_at"), "finished_at")
    with writing(store, check_mode) as (target, migrated):
        before, after, changed = write_record(target, params, check_mode, now)
    result = {"changed": changed or bool(migrated), "record": public(after)}
    result["diff"] = {"before": public(before) or {}, "after": public(after)}
    return result


# -- reading -----------------------------------------------------------------------------------


@contextmanager
def reading(store):
    """A read transaction; an older ledger is read through its migration, which is rolled back.

    Reading never writes: a ledger file that does not exist reads as an empty ledger and is not created.
    """
    if not store.exists():
        stand_in = SQLiteStore(":memory:")
        try:
            stand_in.connect(create=True)
            with stand_in.transaction(write=True, commit=False):
                stand_in.migrate()
                yield stand_in
        finally:
            stand_in.close()
        return
    try:
        store.connect(create=False)
        version = store.schema_version()
        with store.transaction(write=version != LATEST, commit=False):
            if version != LATEST:
                store.migrate()
            yield store
    finally:
        store.close()


def _filters(params):
    filters = {key: params.get(key) or None for key in ("environment", "project", "host")}
    status = params.get("status")
    if status is not None and status not in STATUSES:
        raise LedgerError("status %r is not one of %s" % (status, ", ".join(STATUSES)))
    filters["status"] = status
    filters["since_us"] = parse_time(params.get("since"), "since")
    return filters


def info(params, now=None):
    """deploy_ledger_info: list, get, last_success, metrics or report; never writes."""
    now = now_us() if now is None else now
    query = params.get("query") or "list"
    if query not in QUERIES:
        raise LedgerError("query %r is not one of %s" % (query, ", ".join(QUERIES)))
    filters = _filters(params)
    limit = params.get("limit")
    limit = 10 if limit is None else limit
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise LedgerError("limit must be a whole number of zero (no limit) or more, not %r" % (limit,))
    window_days = params.get("window_days")
    window_days = 30 if window_days is None else window_days
    if not isinstance(window_days, (int, float)) or isinstance(window_days, bool) or window_days <= 0:
        raise LedgerError("window_days must be a number of days above zero, not %r" % (window_days,))
    deployment_id = params.get("deployment_id")
    if deployment_id is not None:
        check_deployment_id(deployment_id)
    if query == "get" and not deployment_id:
        raise LedgerError("query get needs deployment_id")
    if filters["since_us"] is not None and filters["since_us"] > now:
        raise LedgerError("since %s is in the future" % params.get("since"))

    store = open_store(params.get("backend") or "sqlite", params.get("path"), params.get("dsn"), params.get("timeout") or 30)
    result = {"changed": False, "deployments": [], "deployment": None, "metrics": {}}
    if not store.exists():
        result["warnings"] = ["no ledger at %s yet: answering as for an empty ledger" % store.path]
    with reading(store) as s:
        if query == "list":
            result["deployments"] = [public(r) for r in s.list(filters, limit)]
        elif query == "get":
            result["deployment"] = public(s.get(deployment_id))
            result["deployments"] = [result["deployment"]] if result["deployment"] else []
        elif query == "last_success":
            result["deployment"] = public(_last_success(s, filters, deployment_id))
            result["deployments"] = [result["deployment"]] if result["deployment"] else []
        else:
            result["metrics"] = metrics_sql.metrics(s, filters, now, window_days, filters["since_us"])
            if query == "report":
                from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_report import render_html
                start, _days = metrics_sql.window(now, window_days, filters["since_us"])
                history_filters = dict(filters, since_us=start)
                result["deployments"] = [public(r) for r in s.list(history_filters, limit)]
                result["report"] = render_html(
                    title=params.get("title") or "Deployment ledger",
                    scope={k: filters[k] for k in ("environment", "project", "host") if filters[k]},
                    backend=s.backend if s is store else store.backend,
                    metrics=result["metrics"],
                    deployments=result["deployments"],
                    daily=metrics_sql.daily(s, filters, now, window_days, filters["since_us"]),
                    recoveries=metrics_sql.recoveries(s, filters, now, window_days, filters["since_us"]),
                    generated_at=format_time(now),
                )
    return result


def _last_success(store, filters, before_id):
    before = None
    scope = {k: filters.get(k) for k in ("environment", "project", "host")}
    if before_id:
        before = store.get(before_id)
        if before is None:
            raise LedgerError("deployment %s is not in the ledger: give the id of a recorded deployment, or none "
                              "for the newest success" % before_id)
        # Unless told otherwise, "previous" means in the same environment, project and host.
        for key in scope:
            if scope[key] is None:
                scope[key] = before[key]
        return store.last_success(scope, before)
    return store.last_success(scope, None)
