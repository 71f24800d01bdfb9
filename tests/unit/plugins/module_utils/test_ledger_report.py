"""The HTML report: self-contained, escaped, with every chart and the metrics, empty or not."""
from __future__ import annotations

import re

from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_report import (
    fmt_duration,
    nice_max,
    render_html,
)

METRICS = {"total": 3, "successful": 2, "failed": 1, "in_progress": 0, "success_rate": 2 / 3,
           "change_failure_rate": 1 / 3, "rollbacks": 1, "rollback_rate": 1 / 3, "avg_duration_s": 90.0,
           "mttr_s": 240.0, "median_recovery_s": 240.0, "recovered": 1, "unrecovered": 0, "recent_7d": 3,
           "deployment_frequency_per_day": 2 / 30, "lead_time_median_s": 3600.0, "window_days": 30.0,
           "window_start": "2026-10-27T00:00:00Z", "window_end": "2026-11-26T00:00:00Z"}


def deployment(i, status, kind="deploy", notes=None):
    return {"deployment_id": "deploy-%d" % i, "kind": kind, "status": status, "rollback_of": None,
            "environment": "prod", "project": "homeiq", "host": "h1", "commit": "abcdef1234567890", "branch": "main",
            "commit_time": None, "images": None, "services_count": 5, "passed_checks": 12, "failed_checks": 0,
            "performer": "ci", "notes": notes, "started_at": "2026-11-2%dT10:00:00Z" % i,
            "finished_at": "2026-11-2%dT10:01:30Z" % i, "duration_s": 90.0}


def day(date, **counts):
    entry = {"success": 0, "failed": 0, "rolled_back": 0, "in_progress": 0, "rollbacks": 0, "date": date}
    entry.update(counts)
    return entry


def render(**kw):
    args = dict(title="Ledger <prod>", scope={"environment": "prod"}, backend="sqlite", metrics=METRICS,
                deployments=[deployment(3, "success", notes="<script>alert(1)</script>"), deployment(2, "failed"),
                             deployment(1, "success")],
                daily=[day("2026-11-21", success=1), day("2026-11-22", failed=1, rollbacks=1), day("2026-11-23", success=1)],
                recoveries=[{"deployment_id": "deploy-2", "status": "failed", "started_at": "2026-11-22T10:00:00Z",
                             "recovered_at": "2026-11-22T10:04:00Z", "recovery_s": 240.0}],
                generated_at="2026-11-26T00:00:00Z")
    args.update(kw)
    return render_html(**args)


def test_self_contained_and_escaped():
    html = render()
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "Ledger &lt;prod&gt;" in html
    assert not re.search(r"\b(src|href)\s*=|url\(|@import|https?://", html), "the report must fetch nothing"
    assert html.count("<svg") == 3


def test_shows_metrics_and_history():
    html = render()
    assert "66.7 %" in html and "33.3 %" in html and "4 min 0 s" in html and "1 h 0 min" in html
    assert "deploy-3" in html and "deploy-1" in html and "abcdef123456" in html
    assert "2026-10-27 00:00 UTC" in html


def test_empty_ledger_renders_without_charts():
    metrics = dict(METRICS, total=0, successful=0, failed=0, success_rate=None, change_failure_rate=None,
                   mttr_s=None, median_recovery_s=None, lead_time_median_s=None, avg_duration_s=None)
    html = render(metrics=metrics, deployments=[], daily=[day("2026-11-25")], recoveries=[])
    assert "<svg" not in html
    assert "No deployments in this window." in html and "No failed deployments in this window." in html
    assert "n/a" in html


def test_unrecovered_failures_are_drawn_as_outlines():
    html = render(recoveries=[{"deployment_id": "deploy-2", "status": "failed", "started_at": "2026-11-22T10:00:00Z",
                               "recovered_at": None, "recovery_s": None}])
    assert "stroke-dasharray" in html and "not recovered yet" in html


def test_formatting_helpers():
    assert fmt_duration(None) == "n/a"
    assert fmt_duration(42) == "42.0 s"
    assert fmt_duration(3 * 86400 + 7200) == "3 d 2 h"
    assert [nice_max(v) for v in (0, 1, 3, 7, 120)] == [1, 1, 5, 10, 200]
