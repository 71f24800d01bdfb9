# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: the deployment ledger in one SQLite file.

Not a public API. The file is in WAL mode (readers never wait for a writer), every connection
waits up to ``timeout`` seconds for a lock (busy timeout), and writes run in ``BEGIN IMMEDIATE``
transactions, so concurrent writers queue instead of failing or losing a record.
"""
from __future__ import annotations

import os
import sqlite3
import time
from urllib.parse import quote

from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import LedgerError
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_store import LedgerStore


class SQLiteStore(LedgerStore):
    backend = "sqlite"
    paramstyle = "named"

    def __init__(self, path, timeout=30, readonly=False):
        super().__init__(timeout)
        self.path = path
        self.readonly = readonly

    def location(self):
        return "SQLite ledger %s" % self.path

    def exists(self):
        return self.path == ":memory:" or os.path.exists(self.path)

    def driver_errors(self):
        return (sqlite3.Error,)

    def translate(self, exc):
        text = " ".join(str(exc).split())
        low = text.lower()
        if "locked" in low or "busy" in low:
            return LedgerError(
                "%s is locked: another process held it for more than %s s; retry, or raise timeout if "
                "long writers are expected" % (self.location(), self.timeout))
        if "not a database" in low or "malformed" in low or "corrupt" in low:
            return LedgerError(
                "%s is not a readable ledger (%s): move the file aside and restore it from a backup, "
                "or start a new ledger at another path" % (self.location(), text))
        if "unable to open" in low or "readonly" in low or "read-only" in low:
            return LedgerError(
                "cannot open %s (%s): check that its folder exists and is writable by the user running "
                "the module" % (self.location(), text))
        if "disk" in low and "full" in low:
            return LedgerError("%s cannot be written: %s; free disk space and retry" % (self.location(), text))
        return LedgerError("%s: %s" % (self.location(), text))

    def _connect(self, create):
        if create and self.path != ":memory:":
            folder = os.path.dirname(os.path.abspath(self.path))
            try:
                os.makedirs(folder, mode=0o700, exist_ok=True)
            except OSError as exc:
                raise LedgerError("cannot create the ledger's folder %s (%s): create it or choose another path"
                                  % (folder, exc.strerror or exc)) from None
        if os.path.isdir(self.path):
            raise LedgerError("ledger path %s is a folder: give the path of a file, such as %s"
                              % (self.path, os.path.join(self.path, "ledger.sqlite3")))
        if self.readonly:
            uri = "file:%s?mode=ro" % quote(os.path.abspath(self.path))
            conn = sqlite3.connect(uri, timeout=self.timeout, isolation_level=None, uri=True)
        else:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = %d" % int(self.timeout * 1000))
            # Writers switch the file to WAL once (it persists); readers and check mode leave it alone.
            if create and self.path != ":memory:":
                self._switch_to_wal(conn)
            conn.execute("PRAGMA foreign_keys = ON")
        except Exception:
            conn.close()
            raise
        return conn

    def _switch_to_wal(self, conn):
        """Switching the journal needs the file to itself, and SQLite answers "locked" at once,
        without its busy handler, when another connection opened a fresh ledger at the same
        moment; so wait here, up to the timeout, as every other lock waits."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                low = str(exc).lower()
                if ("locked" not in low and "busy" not in low) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def _begin(self, write):
        self.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def _commit(self):
        self.conn.execute("COMMIT")

    def _rollback(self):
        if self.conn is not None and self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _execute(self, sql, params):
        return self.conn.execute(sql, params)

    def index_hint(self, index):
        # Without ANALYZE statistics SQLite would sort every lead time instead of walking the index.
        return " INDEXED BY %s" % index

    def _tables(self):
        return {r[0] for r in self.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'", {})}
