"""Helpers of the ledger's tests: a real PostgreSQL (scripts/ensure-postgres), ledgers on both
backends, the runbook's own table, the first ledger schema, and a PNG reader for screenshots.

Fixtures here are imported by the ledger's test modules; the PostgreSQL ones never skip: when the
server cannot be set up, the tests that need it fail with the set-up's own message.
"""
from __future__ import annotations

import os
import sqlite3
import struct
import subprocess
import sys
import uuid
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

BACKENDS = ["sqlite", "postgres"]
IMAGE_A = "sha256:" + "a" * 64
IMAGE_B = "sha256:" + "b" * 64

# The runbook's tracking table, as its track-deployment.py creates it.
RUNBOOK_DDL = """
CREATE TABLE IF NOT EXISTS deployments (
    id TEXT PRIMARY KEY,
    timestamp TEXT NOT NULL,
    status TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    branch TEXT NOT NULL,
    duration_seconds INTEGER,
    services_count INTEGER,
    passed_checks INTEGER,
    failed_checks INTEGER,
    rollback_performed INTEGER DEFAULT 0,
    notes TEXT
)"""
RUNBOOK_COLUMNS = ("id", "timestamp", "status", "commit_sha", "branch", "duration_seconds", "services_count",
                   "passed_checks", "failed_checks", "rollback_performed", "notes")
RUNBOOK_ROWS = [
    ("deploy-20261101-100000", "2026-11-01T10:05:00.123456", "success", "a1b2c3d", "main", 300, 5, 12, 0, 0, None),
    ("deploy-20261102-100000", "2026-11-02T10:02:00", "failure", "b2c3d4e", "main", 120, 5, 9, 3, 1, "rolled back by hand"),
    ("deploy-20261103-100000", "2026-11-03T10:10:00", "failure", "unknown", "unknown", None, None, None, None, 0, None),
    ("deploy-20261104-100000", "2026-11-04T10:01:00", "success", "c3d4e5f", "release", 60, 5, 12, 0, 0, "hotfix"),
    ("deploy-20261105-100000", "2026-11-05T09:00:00", "in_progress", "d4e5f6a", "main", None, None, None, None, 0, None),
]


def postgres_dsn():
    """The DSN of the test server; runs scripts/ensure-postgres (installs and starts it if needed)."""
    proc = subprocess.run([str(REPO / "scripts" / "ensure-postgres")], capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        pytest.fail("PostgreSQL for the ledger tests could not be set up (scripts/ensure-postgres):\n" + proc.stderr[-3000:])
    dsn_file = Path(proc.stdout.strip().splitlines()[-1])
    return dsn_file.read_text().strip()


def dsn_password(dsn):
    return dict(part.split("=", 1) for part in dsn.split())["password"]


@pytest.fixture(scope="session")
def pg_dsn():
    return postgres_dsn()


class PgSchema:
    """A fresh schema in the test database; its DSN puts the ledger's tables there."""

    def __init__(self, base_dsn):
        import psycopg

        self.base_dsn = base_dsn
        self.name = "t_" + uuid.uuid4().hex[:12]
        self.dsn = "%s options=-csearch_path=%s" % (base_dsn, self.name)
        with psycopg.connect(base_dsn, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA %s" % self.name)

    def drop(self):
        import psycopg

        with psycopg.connect(self.base_dsn, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS %s CASCADE" % self.name)

    def execute(self, sql, params=None):
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else None


class Ledger:
    """One empty ledger of a backend: the module parameters that reach it, and direct SQL."""

    def __init__(self, backend, tmp_path, pg_dsn_value=None):
        self.backend = backend
        self.path = str(Path(tmp_path) / "ledger" / "ledger.sqlite3")
        self.schema = PgSchema(pg_dsn_value) if backend == "postgres" else None
        self.dsn = self.schema.dsn if self.schema else None
        self.password = dsn_password(pg_dsn_value) if pg_dsn_value else None

    @property
    def params(self):
        if self.backend == "sqlite":
            return {"backend": "sqlite", "path": self.path}
        return {"backend": "postgres", "dsn": self.dsn}

    @property
    def role_vars(self):
        return {"ledger_backend": self.backend, "ledger_path": self.path if self.backend == "sqlite" else "",
                "ledger_dsn": self.dsn or ""}

    def sql(self, sql, params=()):
        if self.backend == "sqlite":
            with sqlite3.connect(self.path) as conn:
                return conn.execute(sql, params).fetchall()
        return self.schema.execute(sql.replace("?", "%s"), params)

    def exists(self):
        if self.backend == "sqlite":
            return os.path.exists(self.path)
        return bool(self.schema.execute("SELECT to_regclass('deployments') IS NOT NULL")[0][0])

    def create_v1(self):
        """A ledger in the first schema, as the first version of the collection wrote it."""
        statements = [s for s in (HERE / "schema-v1.sql").read_text().split(";") if s.strip()]
        if self.backend == "sqlite":
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with sqlite3.connect(self.path) as conn:
                for statement in statements:
                    conn.execute(statement)
        else:
            for statement in statements:
                self.schema.execute(statement)

    def close(self):
        if self.schema:
            self.schema.drop()


@pytest.fixture(params=BACKENDS)
def ledger(request, tmp_path):
    dsn = request.getfixturevalue("pg_dsn") if request.param == "postgres" else None
    target = Ledger(request.param, tmp_path, dsn)
    yield target
    target.close()


def write_runbook_sqlite(path, rows=None):
    rows = RUNBOOK_ROWS if rows is None else rows
    with sqlite3.connect(path) as conn:
        conn.execute(RUNBOOK_DDL)
        conn.executemany("INSERT OR REPLACE INTO deployments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return path


def local_inventory(path, hosts=("localhost",)):
    lines = ["all:", "  hosts:"]
    for host in hosts:
        lines += ["    %s:" % host, "      ansible_connection: local",
                  "      ansible_python_interpreter: %s" % sys.executable]
    Path(path).write_text("\n".join(lines) + "\n")
    return str(path)


def png_pixels(path):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA PNG, such as Chromium writes."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), "unexpected PNG format %s/%s" % (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows
