# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: the deployment ledger in PostgreSQL (psycopg 3).

Not a public API. Same schema and SQL as the SQLite store. The tables live in the first schema of
the connection's search_path. Migrations are serialised with a transaction-level advisory lock,
writers of one deployment id with another, and every lock wait is bounded by ``lock_timeout``.
The DSN (and so its password) never appears in a message: errors name host, port, database and
user only, and any text from the driver is scrubbed of the password.
"""
from __future__ import annotations

from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import LedgerError, scrub
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_store import LedgerStore

try:
    import psycopg
    from psycopg import conninfo as _conninfo
    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None
except ImportError as _exc:  # the SQLite backend needs nothing of this
    psycopg = None
    _conninfo = None
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = str(_exc)

# Keys of the advisory locks (pg_advisory_xact_lock takes two int4 keys).
_LOCK_NAMESPACE = 0x48494C44  # "HILD": homeiq ledger
_LOCK_SCHEMA = 1


class PostgresStore(LedgerStore):
    backend = "postgres"
    paramstyle = "pyformat"

    def __init__(self, dsn, timeout=30):
        super().__init__(timeout)
        if not HAS_PSYCOPG:
            raise LedgerError(
                "the postgres backend needs the psycopg 3 library on the host that runs the module "
                "(pip install 'psycopg[binary]'): %s" % PSYCOPG_IMPORT_ERROR)
        if not dsn:
            raise LedgerError("backend postgres needs dsn: a libpq connection string or postgresql:// URI")
        self.dsn = dsn
        try:
            info = _conninfo.conninfo_to_dict(dsn)
        except Exception:
            raise LedgerError(
                "dsn is not a valid PostgreSQL connection string: use key=value pairs (host=... dbname=...) "
                "or a postgresql://user@host:port/dbname URI") from None
        self._secrets = [dsn, info.get("password")]
        self._described = "host %s port %s database %s user %s" % (
            info.get("host") or info.get("hostaddr") or "(default)", info.get("port") or "5432",
            info.get("dbname") or "(default)", info.get("user") or "(default)")

    def location(self):
        return "PostgreSQL ledger (%s)" % self._described

    def driver_errors(self):
        return (psycopg.Error,)

    def translate(self, exc):
        text = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, self._secrets)
        if isinstance(exc, (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled)):
            return LedgerError(
                "%s is locked: another session held it for more than %s s; retry, or raise timeout if long "
                "writers are expected" % (self.location(), self.timeout))
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return LedgerError("%s refused access (%s): grant the user rights on the ledger's tables and schema"
                               % (self.location(), text))
        return LedgerError("%s: %s" % (self.location(), text))

    def _connect(self, create):
        try:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=max(1, int(self.timeout)))
        except psycopg.Error as exc:
            text = scrub(" ".join(str(exc).split()) or type(exc).__name__, self._secrets)
            raise LedgerError(
                "cannot reach the %s: %s; check the dsn, that the server runs and accepts this host"
                % (self.location(), text)) from None
        try:
            conn.execute("SET lock_timeout = %d" % int(self.timeout * 1000))
            conn.execute("SET statement_timeout = %d" % int(max(self.timeout, 60) * 1000))
        except Exception:
            conn.close()
            raise
        return conn

    def _begin(self, write):
        self.conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def _commit(self):
        self.conn.execute("COMMIT")

    def _rollback(self):
        if self.conn is not None and not self.conn.closed:
            self.conn.execute("ROLLBACK")

    def _execute(self, sql, params):
        return self.conn.execute(sql, params, prepare=False)

    def _tables(self):
        # A plain catalog query (not to_regclass, which may answer from a stale cache after the
        # advisory lock) sees tables that a concurrent migration has just committed.
        return {r[0] for r in self.fetchall(
            "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()", {})}

    def _lock_schema(self):
        self.execute("SELECT pg_advisory_xact_lock(:ns, :key)", {"ns": _LOCK_NAMESPACE, "key": _LOCK_SCHEMA})

    def lock_deployment(self, deployment_id):
        self.execute("SELECT pg_advisory_xact_lock(:ns, hashtext(:id))", {"ns": _LOCK_NAMESPACE, "id": deployment_id})
