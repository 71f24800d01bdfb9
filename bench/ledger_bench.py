"""Ledger benchmark: metrics over 100,000 recorded deployments and the cost of recording one, on SQLite.

Prints each figure beside the row count and the ratio against the runbook's way (its tracking
script's six COUNT/AVG queries over its own table of the same size, which compute far less, and its
connect/INSERT OR REPLACE/commit per record). Aims: metrics < 100 ms, one record < 20 ms.
Usage: .venv/bin/python bench/ledger_bench.py [--rows 100000] [--postgres DSN]
(with --postgres, the first schema of the DSN's search_path must exist and be empty).
The machine's load average is printed first: on a shared machine the figures scale with it.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collections"))

from ansible_collections.homeiq.deploy.plugins.module_utils import _ledger as L  # noqa: E402
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import format_time, now_us  # noqa: E402
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_store import COLUMNS  # noqa: E402


def history(rows, now):
    """Rows of a busy fleet over the last 30 days: 3 environments x 4 hosts, ~12 % failures, rollbacks."""
    rnd = random.Random(7)
    step = 30 * 86400 * 1000000 // rows
    out = []
    for i in range(rows):
        start = now - 30 * 86400 * 1000000 + i * step
        kind = "rollback" if rnd.random() < 0.05 else "deploy"
        status = rnd.choices(["success", "failed", "rolled_back", "in_progress"], [86, 7, 6, 1])[0]
        finished = None if status == "in_progress" else start + rnd.randint(30, 600) * 1000000
        row = dict.fromkeys(COLUMNS)
        row.update(deployment_id="deploy-%09d" % i, kind=kind, status=status, environment=rnd.choice(["prod", "staging", "dev"]),
                   project="homeiq", host="box%d" % rnd.randint(1, 4), commit_sha="%040x" % rnd.getrandbits(160), branch="main",
                   commit_time_us=start - rnd.randint(600, 86400) * 1000000, started_at_us=start, finished_at_us=finished,
                   services_count=62, passed_checks=60, failed_checks=0 if status == "success" else 3,
                   images=json.dumps({"web": "sha256:" + "%064x" % i}), updated_at_us=finished or start)
        out.append(row)
    return out


def fill(store, rows):
    store.connect(create=True)
    with store.transaction(write=True):
        store.migrate()
        names = list(COLUMNS)
        sql = store._sql("INSERT INTO deployments (%s) VALUES (%s)" % (", ".join(names), ", ".join(":" + n for n in names)))
        if store.backend == "sqlite":
            store.conn.executemany(sql, rows)
        else:
            with store.conn.cursor() as cur:
                cur.executemany(sql, rows)
    store.close()


def timed(func, repeat):
    times = []
    for dummy in range(repeat):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def runbook_table(path, rows):
    with sqlite3.connect(path) as conn:
        conn.execute("""CREATE TABLE deployments (id TEXT PRIMARY KEY, timestamp TEXT NOT NULL, status TEXT NOT NULL,
            commit_sha TEXT NOT NULL, branch TEXT NOT NULL, duration_seconds INTEGER, services_count INTEGER,
            passed_checks INTEGER, failed_checks INTEGER, rollback_performed INTEGER DEFAULT 0, notes TEXT)""")
        conn.execute("CREATE INDEX idx_deployments_timestamp ON deployments(timestamp DESC)")
        conn.execute("CREATE INDEX idx_deployments_status ON deployments(status)")
        conn.executemany("INSERT INTO deployments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            (r["deployment_id"], format_time(r["finished_at_us"] or r["started_at_us"])[:-1],
             "failure" if r["status"] in ("failed", "rolled_back") else r["status"], r["commit_sha"], "main",
             None if r["finished_at_us"] is None else (r["finished_at_us"] - r["started_at_us"]) // 1000000,
             62, 60, r["failed_checks"], 1 if r["status"] == "rolled_back" else 0, None) for r in rows])


def runbook_metrics(path):
    """The runbook's get_metrics(): six queries over its table."""
    conn = sqlite3.connect(path)
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) FROM deployments").fetchone()
    cur.execute("SELECT COUNT(*) FROM deployments WHERE status = 'success'").fetchone()
    cur.execute("SELECT COUNT(*) FROM deployments WHERE status = 'failure'").fetchone()
    cur.execute("SELECT COUNT(*) FROM deployments WHERE rollback_performed = 1").fetchone()
    cur.execute("SELECT AVG(duration_seconds) FROM deployments WHERE duration_seconds IS NOT NULL").fetchone()
    cur.execute("SELECT COUNT(*) FROM deployments WHERE timestamp > datetime('now', '-7 days')").fetchone()
    conn.close()


def runbook_record(path, n):
    """The runbook's track_deployment(): connect, INSERT OR REPLACE, commit, close."""
    conn = sqlite3.connect(path)
    conn.execute("INSERT OR REPLACE INTO deployments (id, timestamp, status, commit_sha, branch, duration_seconds, services_count,"
                 " passed_checks, failed_checks, rollback_performed, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 ("bench-%d" % n, format_time(now_us())[:-1], "success", "abc", "main", 60, 62, 60, 0, 0, None))
    conn.commit()
    conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100000)
    parser.add_argument("--postgres", metavar="DSN", help="also measure a PostgreSQL ledger (its tables go in the DSN's schema)")
    args = parser.parse_args()
    print("load average: %.1f %.1f %.1f on %d cores" % (os.getloadavg() + (os.cpu_count(),)))
    now = now_us()
    rows = history(args.rows, now)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ledger.sqlite3")
        start = time.perf_counter()
        fill(L.open_store("sqlite", path), rows)
        print("ledger: %d rows loaded into SQLite in %.1f s" % (args.rows, time.perf_counter() - start))
        params = {"backend": "sqlite", "path": path}
        metrics = L.info(dict(params, query="metrics"), now=now)["metrics"]
        print("  metrics of the window: total %d, success_rate %.4f, mttr_s %.1f, lead_time_median_s %.1f"
              % (metrics["total"], metrics["success_rate"], metrics["mttr_s"], metrics["lead_time_median_s"]))
        m_med, m_min = timed(lambda: L.info(dict(params, query="metrics"), now=now), 9)
        counter = iter(range(10 ** 9))
        r_med, r_min = timed(lambda: L.record(dict(params, deployment_id="deploy-bench-%d" % next(counter), status="success",
                                                   images={"web": "sha256:" + "e" * 64}, host="box1")), 50)

        runbook = os.path.join(tmp, "deployments.db")
        runbook_table(runbook, rows)
        rb_m_med, dummy = timed(lambda: runbook_metrics(runbook), 9)
        rb_counter = iter(range(10 ** 9))
        rb_r_med, dummy = timed(lambda: runbook_record(runbook, next(rb_counter)), 50)

        print("sqlite metrics over %d rows: median %.1f ms (best %.1f ms; aim < 100 ms) | runbook's 6 queries: %.1f ms | ratio %.2fx"
              % (args.rows, m_med, m_min, rb_m_med, m_med / rb_m_med))
        print("sqlite record one deployment (%d rows): median %.2f ms (best %.2f ms; aim < 20 ms) | runbook's insert: %.2f ms | ratio %.2fx"
              % (args.rows, r_med, r_min, rb_r_med, r_med / rb_r_med))
        print("  (the runbook's metrics compute no recovery, lead time or rates over finished deployments; "
              "its insert waits for no lock and checks nothing)")

    if args.postgres:
        store = L.open_store("postgres", dsn=args.postgres)
        fill(store, rows)
        params = {"backend": "postgres", "dsn": args.postgres}
        p_med, p_min = timed(lambda: L.info(dict(params, query="metrics"), now=now), 5)
        counter = iter(range(10 ** 9))
        pr_med, pr_min = timed(lambda: L.record(dict(params, deployment_id="deploy-bench-%d" % next(counter), status="success")), 20)
        print("postgres metrics over %d rows: median %.1f ms (best %.1f ms)" % (args.rows, p_med, p_min))
        print("postgres record one deployment (%d rows): median %.2f ms (best %.2f ms)" % (args.rows, pr_med, pr_min))


if __name__ == "__main__":
    main()
