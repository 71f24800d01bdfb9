# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: the deployment ledger's schema, migrations and store interface.

Not a public API. One store class per backend (``_ledger_sqlite.SQLiteStore``,
``_ledger_postgres.PostgresStore``) implements the few driver hooks at the bottom of
``LedgerStore``; everything else (schema, migrations, reads and writes) is shared SQL, written
once with ``:name`` parameters, so both backends hold the same schema and give the same answers.

Schema versions (``ledger_schema`` has one row per applied version):

1. the first layout: one row per deployment with status, scope (environment, project, host),
   commit, branch, times, check counts, images and notes;
2. rollback records (``kind``, ``rollback_of``), lead time (``commit_time_us``), ``performer``,
   and the indexes behind the metrics;
3. ``rollout_locks``: one row per environment and project while a fleet rollout runs
   (``_rollout_lock``).

A ledger written by an older version is migrated in one transaction when it is first written to;
readers see it through the same migration inside a transaction that is rolled back.
"""
from __future__ import annotations

import json
import re
from contextlib import contextmanager

from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import (
    LedgerError,
    now_us,
)

TABLE = "deployments"

# Each migration is a list of statements valid in both SQLite and PostgreSQL.
MIGRATIONS = {
    1: ("the first ledger layout", [
        """CREATE TABLE ledger_schema (
            version INTEGER PRIMARY KEY,
            applied_at_us BIGINT NOT NULL,
            description TEXT NOT NULL)""",
        """CREATE TABLE deployments (
            deployment_id TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('in_progress', 'success', 'failed', 'rolled_back')),
            environment TEXT NOT NULL DEFAULT '',
            project TEXT NOT NULL DEFAULT '',
            host TEXT NOT NULL DEFAULT '',
            commit_sha TEXT,
            branch TEXT,
            started_at_us BIGINT NOT NULL,
            finished_at_us BIGINT,
            services_count INTEGER,
            passed_checks INTEGER,
            failed_checks INTEGER,
            images TEXT,
            notes TEXT,
            updated_at_us BIGINT NOT NULL)""",
        "CREATE INDEX deployments_started ON deployments (started_at_us)",
    ]),
    2: ("rollback records, lead time, performer, metric indexes", [
        "ALTER TABLE deployments ADD COLUMN kind TEXT NOT NULL DEFAULT 'deploy' CHECK (kind IN ('deploy', 'rollback'))",
        "ALTER TABLE deployments ADD COLUMN rollback_of TEXT",
        "ALTER TABLE deployments ADD COLUMN commit_time_us BIGINT",
        "ALTER TABLE deployments ADD COLUMN performer TEXT",
        # Covers the window's one aggregate pass (no table reads).
        "CREATE INDEX deployments_window ON deployments "
        "(kind, started_at_us, status, finished_at_us, commit_time_us, environment, project, host)",
        # One seek per failure finds its recovery.
        "CREATE INDEX deployments_recovery ON deployments (environment, project, host, status, finished_at_us)",
        # The median lead time is read in order from here instead of sorting.
        "CREATE INDEX deployments_lead_time ON deployments (kind, status, (finished_at_us - commit_time_us), started_at_us)",
    ]),
    3: ("fleet rollout locks", [
        """CREATE TABLE rollout_locks (
            scope TEXT PRIMARY KEY,
            rollout_id TEXT NOT NULL,
            owner TEXT NOT NULL,
            acquired_at_us BIGINT NOT NULL,
            expires_at_us BIGINT NOT NULL)""",
    ]),
}
LATEST = max(MIGRATIONS)

COLUMNS = (
    "deployment_id", "kind", "status", "rollback_of", "environment", "project", "host",
    "commit_sha", "branch", "commit_time_us", "started_at_us", "finished_at_us",
    "services_count", "passed_checks", "failed_checks", "performer", "notes", "images", "updated_at_us",
)
SELECT_COLUMNS = ", ".join(COLUMNS)
SCOPE = ("environment", "project", "host")

_PARAM_RE = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


def scope_sql(filters, alias=""):
    """`AND col = :col` for each scope filter that is not None ('' matches records without one)."""
    prefix = alias + "." if alias else ""
    return "".join(" AND %s%s = :%s" % (prefix, key, key) for key in SCOPE if filters.get(key) is not None)


def scope_params(filters):
    return {key: filters[key] for key in SCOPE if filters.get(key) is not None}


def images_text(images):
    return None if images is None else json.dumps(images, sort_keys=True, separators=(",", ":"))


def images_value(text):
    return None if text in (None, "") else json.loads(text)


class LedgerStore:
    """Shared SQL over a DB-API connection; subclasses supply the driver hooks."""

    backend = None
    paramstyle = "named"  # ":name"; "pyformat" converts to "%(name)s"

    def __init__(self, timeout=30):
        self.timeout = timeout
        self.conn = None
        self._in_tx = False

    # -- sessions -----------------------------------------------------------------------------

    def exists(self):
        """Whether the ledger exists at all (a SQLite file does not until first written)."""
        return True

    def connect(self, create):
        if self.conn is None:
            self.conn = self._guard(self._connect, create)
        return self

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # closing a broken connection must not hide the real error
                pass
            self.conn = None

    @contextmanager
    def transaction(self, write, commit=True):
        """One transaction; writers take the write lock at once (SQLite BEGIN IMMEDIATE)."""
        self._guard(self._begin, write)
        self._in_tx = True
        try:
            yield self
        except BaseException:
            self._in_tx = False
            try:
                self._rollback()
            except Exception:
                pass
            raise
        self._in_tx = False
        if commit:
            self._guard(self._commit)
        else:
            self._guard(self._rollback)

    # -- schema -------------------------------------------------------------------------------

    def schema_version(self):
        """Highest applied version; 0 for an empty database. Fails on a table that is not a ledger."""
        tables = self._tables()  # one statement, so one snapshot, even beside a concurrent migration
        if "ledger_schema" not in tables:
            if TABLE in tables:
                raise LedgerError(
                    "%s holds a deployments table that is not a homeiq ledger (the runbook's tracking "
                    "database?): point the ledger elsewhere and bring that history in with import_from" % self.location())
            return 0
        row = self.fetchone("SELECT max(version) FROM ledger_schema", {})
        version = int(row[0] or 0)
        if version > LATEST:
            raise LedgerError(
                "%s has ledger schema version %d, newer than this collection knows (%d): upgrade homeiq.deploy "
                "on the host that runs the module" % (self.location(), version, LATEST))
        return version

    def migrate(self):
        """Brings the schema to LATEST inside the current write transaction; returns versions applied."""
        version = self.schema_version()
        if version == LATEST:
            return []
        self._lock_schema()
        version = self.schema_version()
        applied = []
        for target in range(version + 1, LATEST + 1):
            description, statements = MIGRATIONS[target]
            for statement in statements:
                self.execute(statement, {})
            self.execute("INSERT INTO ledger_schema (version, applied_at_us, description) VALUES (:v, :t, :d)",
                         {"v": target, "t": now_us(), "d": description})
            applied.append(target)
        return applied

    # -- records ------------------------------------------------------------------------------

    def get(self, deployment_id):
        row = self.fetchone("SELECT %s FROM deployments WHERE deployment_id = :id" % SELECT_COLUMNS,
                            {"id": deployment_id})
        return self.row(row)

    def insert(self, row):
        names = [c for c in COLUMNS if c in row]
        self.execute("INSERT INTO deployments (%s) VALUES (%s)" % (", ".join(names), ", ".join(":" + n for n in names)),
                     {n: row[n] for n in names})

    def update(self, deployment_id, changes):
        names = sorted(changes)
        params = {n: changes[n] for n in names}
        params["_id"] = deployment_id
        self.execute("UPDATE deployments SET %s WHERE deployment_id = :_id" % ", ".join("%s = :%s" % (n, n) for n in names),
                     params)

    def list(self, filters, limit):
        where, params = self._where(filters)
        sql = "SELECT %s FROM deployments WHERE 1 = 1%s ORDER BY started_at_us DESC, deployment_id DESC" % (SELECT_COLUMNS, where)
        if limit:
            sql += " LIMIT :limit"
            params["limit"] = int(limit)
        return [self.row(r) for r in self.fetchall(sql, params)]

    def last_success(self, filters, before=None):
        """Newest successful deploy in scope, optionally started before the record `before`."""
        where, params = self._where({k: filters.get(k) for k in SCOPE})
        if before is not None:
            where += " AND (started_at_us < :b_start OR (started_at_us = :b_start AND deployment_id < :b_id))"
            params.update(b_start=before["started_at_us"], b_id=before["deployment_id"])
        row = self.fetchone(
            "SELECT %s FROM deployments WHERE kind = 'deploy' AND status = 'success'%s "
            "ORDER BY started_at_us DESC, deployment_id DESC LIMIT 1" % (SELECT_COLUMNS, where), params)
        return self.row(row)

    @staticmethod
    def _where(filters):
        where = scope_sql(filters)
        params = scope_params(filters)
        if filters.get("status"):
            where += " AND status = :status"
            params["status"] = filters["status"]
        if filters.get("kind"):
            where += " AND kind = :kind"
            params["kind"] = filters["kind"]
        if filters.get("since_us") is not None:
            where += " AND started_at_us >= :since_us"
            params["since_us"] = filters["since_us"]
        return where, params

    @staticmethod
    def row(values):
        if values is None:
            return None
        row = dict(zip(COLUMNS, values))
        for key in ("commit_time_us", "started_at_us", "finished_at_us", "updated_at_us",
                    "services_count", "passed_checks", "failed_checks"):
            if row[key] is not None:
                row[key] = int(row[key])
        return row

    # -- SQL ----------------------------------------------------------------------------------

    def _sql(self, sql):
        if self.paramstyle == "pyformat":
            return _PARAM_RE.sub(r"%(\1)s", sql)
        return sql

    def execute(self, sql, params):
        return self._guard(self._execute, self._sql(sql), params)

    def fetchall(self, sql, params):
        return self._guard(lambda: self._execute(self._sql(sql), params).fetchall())

    def fetchone(self, sql, params):
        return self._guard(lambda: self._execute(self._sql(sql), params).fetchone())

    def _guard(self, func, *args):
        try:
            return func(*args)
        except LedgerError:
            raise
        except self.driver_errors() as exc:
            raise self.translate(exc) from None

    # -- driver hooks -------------------------------------------------------------------------

    def location(self):
        """How the ledger is named in messages (never with a password)."""
        raise NotImplementedError

    def driver_errors(self):
        raise NotImplementedError

    def translate(self, exc):
        """A driver exception as a one-line LedgerError."""
        raise NotImplementedError

    def _connect(self, create):
        raise NotImplementedError

    def _begin(self, write):
        raise NotImplementedError

    def _commit(self):
        self.conn.commit()

    def _rollback(self):
        self.conn.rollback()

    def _execute(self, sql, params):
        raise NotImplementedError

    def _tables(self):
        """Names of the tables in the ledger's schema, read in one statement."""
        raise NotImplementedError

    def index_hint(self, index):
        """Text after a table name that makes the planner use `index` (empty where it picks well alone)."""
        return ""

    def _lock_schema(self):
        """Serialises migrations between processes (SQLite's write lock already does)."""

    def lock_deployment(self, deployment_id):
        """Serialises writers of one deployment id (SQLite's write lock already does)."""
