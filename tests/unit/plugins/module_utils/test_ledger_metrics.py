"""Metric definitions on hand-computed histories, on both backends (the same answers from each)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "integration" / "ledger"))
from ledger_support import ledger, pg_dsn  # noqa: E402,F401 pytest fixtures  # pylint: disable=unused-import

from ansible_collections.homeiq.deploy.plugins.module_utils import _ledger as L  # noqa: E402
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import format_time, parse_time  # noqa: E402

T0 = parse_time("2026-11-20T00:00:00Z", "t0")
NOW = parse_time("2026-11-26T00:00:00Z", "now")
MIN = 60 * 1000000
SEC = 1000000


def at(offset_us):
    return format_time(T0 + offset_us)


def put(ledger, deployment_id, status, start, end=None, **extra):
    params = dict(ledger.params, deployment_id=deployment_id, status=status, started_at=at(start),
                  environment=extra.pop("environment", "prod"), project="homeiq", host=extra.pop("host", "h1"))
    if end is not None:
        params["finished_at"] = at(end)
    if "commit_time" in extra:
        extra["commit_time"] = at(extra["commit_time"])
    params.update(extra)
    L.record(params, now=NOW)


def metrics(ledger, **kw):
    return L.info(dict(ledger.params, query="metrics", **kw), now=NOW)["metrics"]


def test_no_deployments(ledger):
    m = metrics(ledger)
    assert {k: m[k] for k in ("total", "successful", "failed", "in_progress", "rollbacks", "recovered",
                              "unrecovered", "recent_7d")} == dict.fromkeys(
        ("total", "successful", "failed", "in_progress", "rollbacks", "recovered", "unrecovered", "recent_7d"), 0)
    for key in ("success_rate", "change_failure_rate", "rollback_rate", "avg_duration_s", "mttr_s",
                "median_recovery_s", "lead_time_median_s"):
        assert m[key] is None, key
    assert m["deployment_frequency_per_day"] == 0.0
    assert m["window_days"] == 30.0
    assert m["window_start"] == "2026-10-27T00:00:00Z" and m["window_end"] == "2026-11-26T00:00:00Z"


def test_one_success(ledger):
    put(ledger, "deploy-1", "success", 0, 10 * MIN, commit_time=-60 * MIN)
    m = metrics(ledger)
    assert (m["total"], m["successful"], m["failed"], m["in_progress"]) == (1, 1, 0, 0)
    assert m["success_rate"] == 1.0 and m["change_failure_rate"] == 0.0
    assert m["rollbacks"] == 0 and m["rollback_rate"] == 0.0
    assert m["avg_duration_s"] == 600.0
    assert m["mttr_s"] is None and m["median_recovery_s"] is None and m["unrecovered"] == 0
    assert m["deployment_frequency_per_day"] == 1 / 30
    assert m["lead_time_median_s"] == 4200.0
    assert m["recent_7d"] == 1


def test_all_failed(ledger):
    put(ledger, "deploy-1", "failed", 0, 60 * SEC)
    put(ledger, "deploy-2", "failed", 10 * MIN, 10 * MIN + 120 * SEC)
    put(ledger, "deploy-3", "rolled_back", 20 * MIN, 20 * MIN + 180 * SEC)
    m = metrics(ledger)
    assert (m["total"], m["successful"], m["failed"]) == (3, 0, 3)
    assert m["success_rate"] == 0.0 and m["change_failure_rate"] == 1.0
    assert m["avg_duration_s"] == 120.0
    assert m["mttr_s"] is None and m["median_recovery_s"] is None
    assert (m["recovered"], m["unrecovered"]) == (0, 3)
    assert m["deployment_frequency_per_day"] == 0.0
    assert m["lead_time_median_s"] is None


def test_in_progress_counts_in_no_rate(ledger):
    put(ledger, "deploy-1", "success", 0, 60 * SEC)
    put(ledger, "deploy-2", "in_progress", 10 * MIN)
    m = metrics(ledger)
    assert (m["total"], m["successful"], m["in_progress"]) == (2, 1, 1)
    assert m["success_rate"] == 1.0 and m["change_failure_rate"] == 0.0
    assert m["avg_duration_s"] == 60.0


def test_only_in_progress_gives_null_rates(ledger):
    put(ledger, "deploy-1", "in_progress", 0)
    m = metrics(ledger)
    assert m["total"] == 1 and m["in_progress"] == 1
    assert m["success_rate"] is None and m["change_failure_rate"] is None and m["rollback_rate"] is None
    assert m["avg_duration_s"] is None


def test_interleaved_rollbacks(ledger):
    put(ledger, "d1", "success", 0, 5 * MIN, commit_time=-10 * MIN)
    put(ledger, "d2", "failed", 60 * MIN, 62 * MIN)
    put(ledger, "r1", "success", 63 * MIN, 64 * MIN, kind="rollback", rollback_of="d2")
    put(ledger, "d3", "rolled_back", 120 * MIN, 125 * MIN)
    put(ledger, "r2", "failed", 126 * MIN, 127 * MIN, kind="rollback", rollback_of="d3")
    put(ledger, "r3", "success", 130 * MIN, 131 * MIN, kind="rollback", rollback_of="d3")
    put(ledger, "d4", "success", 200 * MIN, 210 * MIN, commit_time=190 * MIN)
    put(ledger, "d5", "failed", 300 * MIN, 301 * MIN)
    put(ledger, "d6", "in_progress", 400 * MIN)
    m = metrics(ledger)
    assert (m["total"], m["successful"], m["failed"], m["in_progress"]) == (6, 2, 3, 1)
    assert m["success_rate"] == 2 / 5 and m["change_failure_rate"] == 3 / 5
    assert m["rollbacks"] == 3 and m["rollback_rate"] == 3 / 5
    assert m["avg_duration_s"] == (300 + 120 + 300 + 600 + 60) / 5
    # d2 recovers at r1's finish (4 min); d3 at r3's (r2 failed): 11 min; d5 never.
    assert m["mttr_s"] == (240 + 660) / 2
    assert m["median_recovery_s"] == 450.0
    assert (m["recovered"], m["unrecovered"]) == (2, 1)
    assert m["deployment_frequency_per_day"] == 2 / 30
    assert m["lead_time_median_s"] == (900 + 1200) / 2


def test_several_hosts_and_environments(ledger):
    put(ledger, "f1", "failed", 0, 1 * MIN, host="h1")
    put(ledger, "s2", "success", 2 * MIN, 3 * MIN, host="h2")          # other host: no recovery of f1
    put(ledger, "s7", "success", 5 * MIN, 6 * MIN, host="h1", environment="staging")  # other environment
    put(ledger, "s3", "success", 10 * MIN, 12 * MIN, host="h1")        # recovers f1: 12 min
    put(ledger, "f4", "failed", 20 * MIN, 21 * MIN, host="h2")
    put(ledger, "s5", "success", 25 * MIN, 26 * MIN, host="h1")        # other host: no recovery of f4
    put(ledger, "s6", "success", 40 * MIN, 50 * MIN, host="h2")        # recovers f4: 30 min
    m = metrics(ledger)
    assert (m["total"], m["successful"], m["failed"]) == (7, 5, 2)
    assert m["mttr_s"] == (720 + 1800) / 2 and m["median_recovery_s"] == 1260.0
    h1 = metrics(ledger, host="h1")
    assert (h1["total"], h1["successful"], h1["failed"]) == (4, 3, 1)
    assert h1["mttr_s"] == 720.0
    prod_h1 = metrics(ledger, host="h1", environment="prod")
    assert (prod_h1["total"], prod_h1["successful"]) == (3, 2)
    staging = metrics(ledger, environment="staging")
    assert (staging["total"], staging["failed"], staging["mttr_s"]) == (1, 0, None)


def test_median_of_an_odd_count(ledger):
    put(ledger, "f1", "failed", 0, 10 * SEC)
    put(ledger, "s1", "success", 50 * SEC, 100 * SEC)
    put(ledger, "f2", "failed", 1000 * SEC, 1010 * SEC)
    put(ledger, "s2", "success", 1100 * SEC, 1200 * SEC)
    put(ledger, "f3", "rolled_back", 2000 * SEC, 2010 * SEC)
    put(ledger, "s3", "success", 2800 * SEC, 2900 * SEC)
    m = metrics(ledger)
    assert m["mttr_s"] == 400.0
    assert m["median_recovery_s"] == 200.0


def test_success_that_finishes_after_a_failure_started_recovers_it(ledger):
    put(ledger, "s1", "success", 0, 10 * MIN)   # still running when f1 starts, finishes after
    put(ledger, "f1", "failed", 5 * MIN, 6 * MIN)
    m = metrics(ledger)
    assert m["mttr_s"] == 300.0 and m["unrecovered"] == 0


def test_window_and_recent_7d(ledger):
    day = 24 * 60 * MIN
    put(ledger, "old", "success", -40 * day, -40 * day + MIN)       # before the 30-day window
    put(ledger, "mid", "failed", -10 * day, -10 * day + MIN)        # in the window, not in the last 7 days
    put(ledger, "new", "success", 5 * day, 5 * day + MIN)           # 1 day before now
    m = metrics(ledger)
    assert (m["total"], m["successful"], m["failed"], m["recent_7d"]) == (2, 1, 1, 1)
    assert m["mttr_s"] == (15 * day + MIN) / SEC
    short = metrics(ledger, window_days=2)
    assert (short["total"], short["recent_7d"], short["window_days"]) == (1, 1, 2.0)
    assert short["deployment_frequency_per_day"] == 0.5
    since = metrics(ledger, since=at(-20 * day))                     # 26 days before now
    assert since["total"] == 2 and since["window_days"] == 26.0
    assert since["deployment_frequency_per_day"] == 1 / 26


def test_numbers_are_unrounded(ledger):
    put(ledger, "d1", "success", 0, 1 * SEC + 1)
    put(ledger, "d2", "success", MIN, MIN + 2 * SEC)
    put(ledger, "d3", "failed", 2 * MIN, 2 * MIN + 1 * SEC)
    m = metrics(ledger)
    assert m["avg_duration_s"] == 4.000001 / 3
    assert m["success_rate"] == 2 / 3


@pytest.mark.parametrize("window_days", [0, -1])
def test_window_must_be_positive(ledger, window_days):
    with pytest.raises(L.LedgerError, match="window_days"):
        metrics(ledger, window_days=window_days)
