"""Recording rules (pure planning) and the store on both backends: idempotence, check mode, reads,
migration from the first schema, schema guards, last_success and the runbook import."""
from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "integration" / "ledger"))
from ledger_support import IMAGE_A, IMAGE_B, RUNBOOK_ROWS, ledger, pg_dsn, write_runbook_sqlite  # noqa: E402,F401  pylint: disable=unused-import

from ansible_collections.homeiq.deploy.plugins.module_utils import _ledger as L  # noqa: E402
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import (  # noqa: E402
    LedgerError,
    format_time,
    parse_time,
)
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_store import LATEST  # noqa: E402

NOW = parse_time("2026-11-26T12:00:00Z", "now")
LATER = NOW + 90 * 1000000


# -- pure planning ------------------------------------------------------------------------------

def plan(before, **params):
    params.setdefault("deployment_id", "deploy-20261126-120000")
    return L.plan_record(before, params, NOW)


def test_first_record_defaults():
    row, changes = plan(None)
    assert (row["status"], row["kind"], row["started_at_us"], row["finished_at_us"]) == ("in_progress", "deploy", NOW, None)
    assert changes


def test_final_status_sets_finish_and_repeating_changes_nothing():
    row, dummy = plan(None, status="in_progress")
    row2, changes = L.plan_record(row, {"deployment_id": row["deployment_id"], "status": "success"}, LATER)
    assert row2["finished_at_us"] == LATER and set(changes) >= {"status", "finished_at_us"}
    _row3, changes = L.plan_record(row2, {"deployment_id": row["deployment_id"], "status": "success"}, LATER + 5)
    assert changes == {}


def test_a_later_final_status_keeps_the_finish_time():
    row, dummy = plan(None, status="failed")
    row2, changes = L.plan_record(row, {"deployment_id": row["deployment_id"], "status": "rolled_back"}, LATER)
    assert row2["finished_at_us"] == NOW and set(changes) == {"status", "updated_at_us"}


def test_finished_cannot_go_back_to_in_progress():
    row, dummy = plan(None, status="success")
    with pytest.raises(LedgerError, match="cannot go back to in_progress"):
        L.plan_record(row, {"deployment_id": row["deployment_id"], "status": "in_progress"}, LATER)


@pytest.mark.parametrize("params, message", [
    ({"status": "success", "started_at": "2026-11-26T12:00:00Z", "finished_at": "2026-11-26T11:00:00Z"}, "before it started"),
    ({"finished_at": "2026-11-26T12:00:00Z"}, "status is in_progress"),
    ({"rollback_of": "deploy-1"}, "only for records of kind rollback"),
    ({"kind": "rollback", "rollback_of": "deploy-20261126-120000"}, "rollback of itself"),
    ({"images": {"web": "sha256:abc"}}, "not a full image ID"),
    ({"images": {"web": "homeiq/web:latest"}}, "not a full image ID"),
    ({"started_at": "yesterday"}, "not an ISO 8601 time"),
    ({"deployment_id": "deploy 1"}, "not a valid deployment id"),
    ({"services_count": -1}, "whole number"),
    ({"status": "done"}, "is not one of"),
    ({"images": {"core": {"web": "sha256:abc"}}}, "service 'web' of project 'core' is 'sha256:abc', not a full image ID"),
    ({"images": {"core": {"web": IMAGE_A}, "web": IMAGE_B}}, "mixes projects"),
    ({"images": {"": {"web": IMAGE_A}}}, "empty or non-text project name"),
    ({"images": {"core": {"": IMAGE_A}}}, "empty or non-text service name"),
])
def test_bad_input_is_one_clear_line(params, message):
    with pytest.raises(LedgerError, match=message) as info:
        plan(None, **params)
    assert "\n" not in str(info.value)


def test_times_parse_and_format():
    assert format_time(parse_time("2026-11-26T12:00:00", "t")) == "2026-11-26T12:00:00Z"
    assert format_time(parse_time("2026-11-26T13:00:00.5+01:00", "t")) == "2026-11-26T12:00:00.500000Z"
    assert format_time(parse_time("2026-11-26", "t")) == "2026-11-26T00:00:00Z"


# -- through the store, on both backends ---------------------------------------------------------

def rec(ledger, check=False, now=NOW, **params):
    return L.record(dict(ledger.params, **params), check_mode=check, now=now)


def test_record_check_real_check_real(ledger):
    params = dict(deployment_id="deploy-20261126-120000", status="success", images={"web": IMAGE_A}, host="h1")
    first = rec(ledger, check=True, **params)
    assert first["changed"] and first["record"]["status"] == "success"
    assert not ledger.exists(), "check mode must not create the ledger"
    assert rec(ledger, **params)["changed"]
    assert not rec(ledger, check=True, now=LATER, **params)["changed"]
    again = rec(ledger, now=LATER, **params)
    assert not again["changed"]
    assert again["record"]["finished_at"] == format_time(NOW) and again["record"]["images"] == {"web": IMAGE_A}
    assert again["diff"]["before"] == again["diff"]["after"]


def test_a_stack_records_its_images_nested_by_project(ledger):
    images = {"homeiq-core-platform": {"data-api": IMAGE_A, "influxdb": IMAGE_B},
              "homeiq-frontends": {"health-dashboard": IMAGE_A}}
    params = dict(deployment_id="deploy-20261126-120000", status="success", images=images, services_count=3,
                  project="homeiq", host="h1")
    assert rec(ledger, check=True, **params)["record"]["images"] == images
    assert rec(ledger, **params)["changed"]
    again = rec(ledger, now=LATER, **params)
    assert not again["changed"] and again["record"]["images"] == images and again["record"]["services_count"] == 3
    got = L.info(dict(ledger.params, query="last_success", project="homeiq", host="h1"))["deployment"]
    assert got["deployment_id"] == "deploy-20261126-120000" and got["images"] == images


def test_check_mode_changes_nothing_on_an_existing_ledger(ledger):
    rec(ledger, deployment_id="deploy-1", status="in_progress")
    assert rec(ledger, check=True, deployment_id="deploy-1", status="success")["changed"]
    assert L.info(dict(ledger.params, query="get", deployment_id="deploy-1"))["deployment"]["status"] == "in_progress"


def test_reads_never_create_a_ledger(ledger):
    result = L.info(dict(ledger.params, query="metrics"), now=NOW)
    assert result["metrics"]["total"] == 0 and not ledger.exists()
    assert L.info(dict(ledger.params, query="last_success"))["deployment"] is None


def test_list_filters_order_and_limit(ledger):
    for i, (status, host) in enumerate([("success", "h1"), ("failed", "h2"), ("success", "h2"), ("in_progress", "h1")]):
        rec(ledger, deployment_id="deploy-%d" % i, status=status, host=host, started_at=format_time(NOW - (10 - i) * 60000000))

    def ids(**kw):
        return [d["deployment_id"] for d in L.info(dict(ledger.params, query="list", **kw), now=NOW)["deployments"]]

    assert ids() == ["deploy-3", "deploy-2", "deploy-1", "deploy-0"]
    assert ids(limit=2) == ["deploy-3", "deploy-2"]
    assert ids(host="h2") == ["deploy-2", "deploy-1"]
    assert ids(status="success") == ["deploy-2", "deploy-0"]
    assert ids(since=format_time(NOW - 8 * 60000000)) == ["deploy-3", "deploy-2"]


def test_last_success_is_what_a_rollback_restores(ledger):
    base = dict(environment="prod", project="homeiq", host="h1")
    rec(ledger, deployment_id="d1", status="success", images={"web": IMAGE_A}, started_at="2026-11-26T10:00:00Z", **base)
    rec(ledger, deployment_id="d2", status="success", images={"web": IMAGE_B}, started_at="2026-11-26T10:30:00Z",
        **{**base, "host": "h2"})
    rec(ledger, deployment_id="r1", status="success", kind="rollback", rollback_of="d1", started_at="2026-11-26T10:40:00Z", **base)
    rec(ledger, deployment_id="d3", status="failed", images={"web": IMAGE_B}, started_at="2026-11-26T11:00:00Z", **base)

    def last(**kw):
        return L.info(dict(ledger.params, query="last_success", **kw))["deployment"]

    assert last()["deployment_id"] == "d2"
    before_d3 = last(deployment_id="d3")  # same environment, project and host as d3 by default
    assert before_d3["deployment_id"] == "d1" and before_d3["images"] == {"web": IMAGE_A}
    assert last(deployment_id="d3", host="h2")["deployment_id"] == "d2"
    assert last(deployment_id="d1") is None
    with pytest.raises(LedgerError, match="not in the ledger"):
        last(deployment_id="deploy-nope")


def test_migration_from_the_first_schema(ledger):
    ledger.create_v1()
    # Reading sees the old rows through the migration, and leaves the ledger at version 1.
    got = L.info(dict(ledger.params, query="get", deployment_id="deploy-20261001-120000"))["deployment"]
    assert got["kind"] == "deploy" and got["images"] == {"web": IMAGE_A} and got["duration_s"] == 90.0
    assert ledger.sql("SELECT max(version) FROM ledger_schema")[0][0] == 1
    # The first write migrates (a change even when the record itself is unchanged) ...
    result = rec(ledger, deployment_id="deploy-20261001-120000", status="success")
    assert result["changed"] and result["record"]["finished_at"] == "2026-10-01T12:01:30Z"
    assert ledger.sql("SELECT max(version) FROM ledger_schema")[0][0] == LATEST
    # ... and then nothing changes.
    assert not rec(ledger, deployment_id="deploy-20261001-120000", status="success")["changed"]
    rec(ledger, deployment_id="deploy-20261002-130000", kind="rollback", rollback_of="deploy-20261002-120000",
        status="success", started_at="2026-10-02T12:02:00Z", finished_at="2026-10-02T12:03:00Z",
        environment="prod", project="homeiq", host="box1")
    m = L.info(dict(ledger.params, query="metrics", since="2026-09-30T00:00:00Z"), now=NOW)["metrics"]
    assert (m["total"], m["failed"], m["rollbacks"], m["mttr_s"]) == (2, 1, 1, 180.0)


def test_a_newer_schema_is_refused(ledger):
    rec(ledger, deployment_id="deploy-1")
    ledger.sql("INSERT INTO ledger_schema (version, applied_at_us, description) VALUES (?, ?, ?)", (LATEST + 1, 0, "future"))
    with pytest.raises(LedgerError, match="newer than this collection knows"):
        rec(ledger, deployment_id="deploy-2")
    with pytest.raises(LedgerError, match="upgrade homeiq.deploy"):
        L.info(dict(ledger.params, query="list"))


def test_the_runbook_table_is_not_taken_for_a_ledger(tmp_path):
    path = write_runbook_sqlite(str(tmp_path / "deployments.db"))
    with pytest.raises(LedgerError, match="not a homeiq ledger"):
        L.record({"backend": "sqlite", "path": path, "deployment_id": "deploy-1"})


def test_runbook_import(ledger, tmp_path):
    source = write_runbook_sqlite(str(tmp_path / "deployments.db"))
    params = dict(ledger.params, import_from={"backend": "sqlite", "path": source, "table": "deployments"},
                  environment="prod", project="homeiq", host="box1", performer="runbook")
    checked = L.record(params, check_mode=True, now=NOW)
    assert checked["changed"] and checked["imported"]["inserted"] == 5 and not ledger.exists()
    first = L.record(params, now=NOW)
    assert first["changed"] and first["imported"] == {
        "rows": 5, "inserted": 5, "updated": 0, "unchanged": 0, "deployment_ids": [r[0] for r in RUNBOOK_ROWS]}
    again = L.record(params, now=NOW)
    assert not again["changed"] and again["imported"]["unchanged"] == 5

    def get(deployment_id):
        return L.info(dict(ledger.params, query="get", deployment_id=deployment_id))["deployment"]

    ok = get("deploy-20261101-100000")
    assert (ok["status"], ok["started_at"], ok["finished_at"], ok["duration_s"]) == (
        "success", "2026-11-01T10:00:00.123456Z", "2026-11-01T10:05:00.123456Z", 300.0)
    assert (ok["commit"], ok["environment"], ok["host"], ok["performer"], ok["passed_checks"]) == ("a1b2c3d", "prod", "box1", "runbook", 12)
    rolled = get("deploy-20261102-100000")
    assert rolled["status"] == "rolled_back" and rolled["notes"] == "rolled back by hand"
    unknown = get("deploy-20261103-100000")
    assert (unknown["status"], unknown["commit"], unknown["branch"], unknown["duration_s"]) == ("failed", None, None, 0.0)
    assert get("deploy-20261105-100000")["status"] == "in_progress"
    m = L.info(dict(ledger.params, query="metrics", since="2026-11-01T00:00:00Z"), now=NOW)["metrics"]
    assert (m["total"], m["successful"], m["failed"], m["in_progress"]) == (5, 2, 2, 1)
    # Both failures recover at the 4 November success: 2 Nov 10:00 -> 4 Nov 10:01, 3 Nov 10:10 -> 4 Nov 10:01.
    assert m["mttr_s"] == ((2 * 86400 + 60) + (86400 - 540)) / 2


def test_runbook_import_from_postgres(ledger, pg_dsn, tmp_path):
    from ledger_support import RUNBOOK_DDL, PgSchema

    source = PgSchema(pg_dsn)
    try:
        source.execute(RUNBOOK_DDL.replace("INTEGER DEFAULT 0", "INTEGER DEFAULT 0").replace("timestamp TEXT", "timestamp TIMESTAMP"))
        for row in RUNBOOK_ROWS:
            source.execute("INSERT INTO deployments VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", row)
        params = dict(ledger.params, import_from={"backend": "postgres", "dsn": source.dsn, "table": "deployments"})
        assert L.record(params, now=NOW)["imported"]["inserted"] == 5
        assert not L.record(params, now=NOW)["changed"]
        got = L.info(dict(ledger.params, query="get", deployment_id="deploy-20261101-100000"))["deployment"]
        assert got["started_at"] == "2026-11-01T10:00:00.123456Z"
    finally:
        source.drop()


def test_runbook_import_errors(tmp_path, ledger):
    with pytest.raises(LedgerError, match="does not exist"):
        L.record(dict(ledger.params, import_from={"path": str(tmp_path / "missing.db")}))
    other = str(tmp_path / "other.db")
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE deployments (name TEXT)")
    with pytest.raises(LedgerError, match="lacks the runbook's column"):
        L.record(dict(ledger.params, import_from={"path": other}))
    with pytest.raises(LedgerError, match="not a plain table name"):
        L.record(dict(ledger.params, import_from={"path": other, "table": "x; drop table y"}))
    bad = write_runbook_sqlite(str(tmp_path / "bad.db"), [("deploy-1", "2026-11-01T10:00:00", "exploded", "x", "y", 1, 1, 1, 1, 0, None)])
    with pytest.raises(LedgerError, match="status 'exploded'"):
        L.record(dict(ledger.params, import_from={"path": bad}))
