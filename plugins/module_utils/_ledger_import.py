# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: import of the runbook's own deployments table into the ledger.

Not a public API. The runbook's tracking script keeps one row per deployment in a table
``deployments`` (SQLite file, or the same table in PostgreSQL) with the columns
``id, timestamp, status, commit_sha, branch, duration_seconds, services_count, passed_checks,
failed_checks, rollback_performed, notes``. Its ``timestamp`` is the UTC time of the row's last
write (naive ISO 8601), so for a finished row it is when it finished. Mapping:

- ``id`` -> deployment_id; kind deploy; environment, project, host and performer from the module;
- status ``success`` -> success, ``failure`` -> failed, ``in_progress`` -> in_progress; a
  finished row with ``rollback_performed`` = 1 -> rolled_back;
- finished rows: finished_at = timestamp, started_at = timestamp - duration_seconds (timestamp
  when the duration is unknown); in-progress rows: started_at = timestamp;
- ``commit_sha`` and ``branch`` of ``unknown`` (the script's placeholder) -> none.

Rows go through the ledger's recording rules, so importing twice changes nothing.
"""
from __future__ import annotations

import os
import re

from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import (
    FINAL_STATUSES,
    LedgerError,
    format_time,
    parse_time,
)

REQUIRED = ("id", "timestamp", "status")
OPTIONAL = ("commit_sha", "branch", "duration_seconds", "services_count", "passed_checks",
            "failed_checks", "rollback_performed", "notes")
_TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_STATUS = {"success": "success", "failure": "failed", "failed": "failed",
           "in_progress": "in_progress", "rolled_back": "rolled_back"}
_PLACEHOLDERS = ("", "unknown")


def _source_store(source, timeout):
    from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_sqlite import SQLiteStore
    from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_postgres import PostgresStore

    backend = source.get("backend") or "sqlite"
    if backend == "sqlite":
        path = source.get("path")
        if not path:
            raise LedgerError("import_from with backend sqlite needs path: the runbook's deployments.db")
        path = os.path.expanduser(path)
        if not os.path.isfile(path):
            raise LedgerError("import_from.path %s does not exist: give the runbook's SQLite file (data/deployments.db)" % path)
        return SQLiteStore(path, timeout, readonly=True)
    if backend == "postgres":
        return PostgresStore(source.get("dsn"), timeout)
    raise LedgerError("import_from.backend %r is not known: use sqlite or postgres" % backend)


def read_runbook(source, timeout=30):
    """The runbook table's rows as dicts of the columns it has (REQUIRED ones must be there)."""
    table = source.get("table") or "deployments"
    if not _TABLE_RE.match(table):
        raise LedgerError("import_from.table %r is not a plain table name (letters, digits, _; schema.table allowed)" % table)
    store = _source_store(source, timeout)
    try:
        store.connect(create=False)
        if store.backend == "sqlite":
            columns = [r[1] for r in store.fetchall("SELECT * FROM pragma_table_info(:t)", {"t": table})]
        else:
            rows = store.fetchall(
                "SELECT column_name FROM information_schema.columns WHERE table_name = :t AND "
                "table_schema = coalesce(:s, current_schema()) ORDER BY ordinal_position",
                {"t": table.split(".")[-1], "s": table.split(".")[0] if "." in table else None})
            columns = [r[0] for r in rows]
        if not columns:
            raise LedgerError("%s has no table %s: give import_from.table" % (store.location(), table))
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise LedgerError("table %s of %s lacks the runbook's column(s) %s: it is not the runbook's deployments table"
                              % (table, store.location(), ", ".join(missing)))
        wanted = [c for c in REQUIRED + OPTIONAL if c in columns]
        rows = store.fetchall("SELECT %s FROM %s ORDER BY timestamp, id" % (", ".join(wanted), table), {})
        return [dict(zip(wanted, r)) for r in rows]
    finally:
        store.close()


def _text(value):
    if value is None:
        return None
    text = str(value).strip()
    return None if text.lower() in _PLACEHOLDERS else text


def _count(value):
    """A whole number of zero or more from a runbook cell, else None (the runbook never checked them)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def runbook_params(row, defaults):
    """The deploy_ledger parameters for one runbook row."""
    deployment_id = str(row["id"])
    status = _STATUS.get(str(row["status"]).strip().lower())
    if status is None:
        raise LedgerError("row %s of the runbook table has status %r, not success, failure or in_progress: fix the row "
                          "or leave it out" % (deployment_id, row["status"]))
    if status in FINAL_STATUSES and row.get("rollback_performed") not in (None, 0, "0", False, ""):
        status = "rolled_back"
    stamp = parse_time(row["timestamp"], "timestamp of runbook row %s" % deployment_id)
    duration = row.get("duration_seconds")
    try:
        duration_us = int(round(float(duration) * 1000000)) if duration not in (None, "") and float(duration) >= 0 else None
    except (TypeError, ValueError):
        duration_us = None
    params = {
        "deployment_id": deployment_id,
        "status": status,
        "kind": "deploy",
        "environment": defaults.get("environment"),
        "project": defaults.get("project"),
        "host": defaults.get("host"),
        "performer": defaults.get("performer"),
        "commit": _text(row.get("commit_sha")),
        "branch": _text(row.get("branch")),
        "notes": row.get("notes") or None,
    }
    for key in ("services_count", "passed_checks", "failed_checks"):
        params[key] = _count(row.get(key))
    if status in FINAL_STATUSES:
        params["finished_at"] = format_time(stamp)
        params["started_at"] = format_time(stamp - duration_us if duration_us else stamp)
    else:
        params["started_at"] = format_time(stamp)
    return params


def import_runbook(store, source, defaults, check_mode, now):
    """Imports every runbook row into `store` (inside the caller's write transaction); returns counts."""
    from ansible_collections.homeiq.deploy.plugins.module_utils._ledger import write_record

    rows = read_runbook(source, store.timeout)
    counts = {"rows": len(rows), "inserted": 0, "updated": 0, "unchanged": 0, "deployment_ids": []}
    for row in rows:
        params = runbook_params(row, defaults)
        before, _after, changed = write_record(store, params, check_mode, now)
        if not changed:
            counts["unchanged"] += 1
            continue
        counts["inserted" if before is None else "updated"] += 1
        counts["deployment_ids"].append(params["deployment_id"])
    return counts
