"""The ledger through real ansible-playbook runs, on SQLite and PostgreSQL alike."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "ledger"))
from ledger_support import (  # noqa: E402,F401 pytest fixtures  # pylint: disable=unused-import
    IMAGE_A,
    HERE,
    REPO,
    dsn_password,
    ledger,
    local_inventory,
    pg_dsn,
    png_pixels,
    write_runbook_sqlite,
)

from ansible_collections.homeiq.deploy.plugins.module_utils import _ledger as L  # noqa: E402
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import format_time, now_us  # noqa: E402
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_store import LATEST  # noqa: E402

RECORD_TASK = "homeiq.deploy.ledger : Record the deployment in the ledger"


@pytest.fixture
def inventory(tmp_path):
    return local_inventory(tmp_path / "hosts.yml")


def no_traceback(run):
    assert "Traceback" not in run.output, run.output[-3000:]


def one_line_failure(run, task, needle):
    assert run.rc != 0
    result = run.task(task)
    assert result["status"] == "failed", result
    msg = result["result"]["msg"]
    assert needle in msg and "\n" not in msg, msg
    no_traceback(run)
    return msg


def test_record_through_the_role_check_real_check_real(playbook, ledger, inventory):
    role_vars = dict(ledger.role_vars, ledger_deployment_id="deploy-20261126-231500", ledger_status="success",
                     ledger_environment="local", ledger_project="homeiq-demo", ledger_images={"web": IMAGE_A},
                     ledger_services_count=1, ledger_passed_checks=3, ledger_failed_checks=0, ledger_commit="4f2a9c1")
    expected = [True, True, False, False]
    for check, changed in zip((True, False, True, False), expected):
        run = playbook(HERE / "record.yml", inventory=inventory, extra_vars=role_vars, check=check)
        assert run.rc == 0, run.output[-3000:]
        result = run.task(RECORD_TASK)["result"]
        assert result["changed"] is changed, (check, result)
        if check and changed:
            assert not ledger.exists(), "check mode created the ledger"
    record = result["record"]
    assert (record["status"], record["host"], record["environment"], record["images"]) == (
        "success", "localhost", "local", {"web": IMAGE_A})
    assert record["duration_s"] == 0.0 and record["started_at"] == record["finished_at"]
    assert ledger.sql("SELECT count(*) FROM deployments")[0][0] == 1


def test_twenty_concurrent_writers_lose_nothing(playbook, ledger, tmp_path):
    hosts = ["w%02d" % i for i in range(20)]
    inventory = local_inventory(tmp_path / "fleet.yml", hosts)
    params = dict(ledger.params.items())
    run = playbook(HERE / "concurrent.yml", inventory=inventory, extra_vars={"ledger": params, "records": 5},
                   env={"ANSIBLE_FORKS": "20"})
    assert run.rc == 0, run.output[-3000:]
    results = run.by_action("deploy_ledger")
    assert len(results) == 20 and all(r["status"] == "ok" for r in results)
    assert ledger.sql("SELECT count(*), count(DISTINCT host) FROM deployments")[0] == (100, 20)
    if ledger.backend == "sqlite":
        assert ledger.sql("PRAGMA journal_mode")[0][0] == "wal"
    listed = L.info(dict(ledger.params, query="metrics"))["metrics"]
    assert listed["total"] == 100 and listed["successful"] == 100


def test_migration_from_the_first_schema(playbook, ledger, inventory):
    ledger.create_v1()
    read = dict(ledger.params, query="list", limit=0)
    run = playbook(HERE / "modules.yml", inventory=inventory, extra_vars={"read": read})
    assert run.rc == 0, run.output[-3000:]
    listed = run.task("Read")["result"]["deployments"]
    assert [d["deployment_id"] for d in listed] == ["deploy-20261002-120000", "deploy-20261001-120000"]
    assert listed[0]["kind"] == "deploy" and listed[0]["notes"] == "health checks failed"
    assert ledger.sql("SELECT max(version) FROM ledger_schema")[0][0] == 1, "reading must not migrate"

    record = dict(ledger.params, deployment_id="deploy-20261002-130000", kind="rollback",
                  rollback_of="deploy-20261002-120000", status="success", environment="prod", project="homeiq",
                  host="box1", started_at="2026-10-02T12:02:00Z", finished_at="2026-10-02T12:03:00Z")
    for check, changed, version in ((True, True, 1), (False, True, LATEST), (True, False, LATEST), (False, False, LATEST)):
        run = playbook(HERE / "modules.yml", inventory=inventory, extra_vars={"record": record}, check=check)
        assert run.rc == 0, run.output[-3000:]
        assert run.task("Record")["result"]["changed"] is changed, check
        assert ledger.sql("SELECT max(version) FROM ledger_schema")[0][0] == version
    got = L.info(dict(ledger.params, query="get", deployment_id="deploy-20261001-120000"))["deployment"]
    assert got["images"] == {"web": IMAGE_A} and got["duration_s"] == 90.0


def test_runbook_import(playbook, ledger, inventory, tmp_path):
    source = write_runbook_sqlite(str(tmp_path / "deployments.db"))
    record = dict(ledger.params, import_from={"backend": "sqlite", "path": source}, environment="prod",
                  project="homeiq", host="box1")
    for check, changed in ((True, True), (False, True), (True, False), (False, False)):
        run = playbook(HERE / "modules.yml", inventory=inventory, extra_vars={"record": record}, check=check)
        assert run.rc == 0, run.output[-3000:]
        result = run.task("Record")["result"]
        assert result["changed"] is changed and result["record"] is None
    assert result["imported"]["unchanged"] == 5
    assert ledger.sql("SELECT status FROM deployments WHERE deployment_id = 'deploy-20261102-100000'")[0][0] == "rolled_back"


def test_corrupt_ledger_is_one_clear_line(playbook, inventory, tmp_path):
    path = tmp_path / "corrupt.sqlite3"
    path.write_bytes(b"this is not a database\n" * 400)
    run = playbook(HERE / "modules.yml", inventory=inventory,
                   extra_vars={"record": {"path": str(path), "deployment_id": "deploy-1", "status": "success"}})
    msg = one_line_failure(run, "Record", "is not a readable ledger")
    assert str(path) in msg and "restore it from a backup" in msg
    run = playbook(HERE / "modules.yml", inventory=inventory, extra_vars={"read": {"path": str(path), "query": "metrics"}})
    one_line_failure(run, "Read", "is not a readable ledger")


def test_locked_sqlite_ledger_is_one_clear_line(playbook, inventory, tmp_path):
    path = str(tmp_path / "l.sqlite3")
    L.record({"path": path, "deployment_id": "deploy-0", "status": "success"})
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        run = playbook(HERE / "modules.yml", inventory=inventory,
                       extra_vars={"record": {"path": path, "deployment_id": "deploy-1", "status": "success", "timeout": 1}})
        one_line_failure(run, "Record", "is locked")
        # Readers are not blocked by a writer (WAL).
        run = playbook(HERE / "modules.yml", inventory=inventory, extra_vars={"read": {"path": path, "query": "list"}})
        assert run.rc == 0 and len(run.task("Read")["result"]["deployments"]) == 1
        assert time.monotonic() - started < 60
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_locked_postgres_ledger_is_one_clear_line(playbook, inventory, pg_dsn, tmp_path):
    import psycopg

    from ledger_support import Ledger

    target = Ledger("postgres", tmp_path, pg_dsn)
    try:
        L.record(dict(target.params, deployment_id="deploy-0", status="success"))
        with psycopg.connect(target.dsn) as holder:
            holder.execute("LOCK TABLE deployments IN ACCESS EXCLUSIVE MODE")
            run = playbook(HERE / "modules.yml", inventory=inventory,
                           extra_vars={"record": dict(target.params, deployment_id="deploy-1", status="success", timeout=1)})
            msg = one_line_failure(run, "Record", "is locked")
            assert target.password not in run.output and target.password not in msg
            holder.rollback()
    finally:
        target.close()


def test_unreachable_ledgers_are_one_clear_line(playbook, inventory, tmp_path, pg_dsn):
    password = dsn_password(pg_dsn)
    closed = pg_dsn.replace("port=", "port=1 oldport=").split(" oldport=")[0] + " " + " ".join(
        p for p in pg_dsn.split() if not p.startswith(("host=", "port=")))
    run = playbook(HERE / "modules.yml", inventory=inventory,
                   extra_vars={"record": {"backend": "postgres", "dsn": closed, "deployment_id": "deploy-1", "timeout": 2}})
    msg = one_line_failure(run, "Record", "cannot reach the PostgreSQL ledger")
    assert "port 1" in msg and password not in run.output
    blocker = tmp_path / "file"
    blocker.write_text("")
    run = playbook(HERE / "modules.yml", inventory=inventory,
                   extra_vars={"record": {"path": str(blocker / "l.sqlite3"), "deployment_id": "deploy-1"}})
    one_line_failure(run, "Record", "cannot create the ledger's folder")


def test_dsn_is_never_in_output(playbook, tmp_path, pg_dsn):
    from ledger_support import Ledger

    target = Ledger("postgres", tmp_path, pg_dsn)
    inventory = local_inventory(tmp_path / "hosts.yml")
    env = {"ANSIBLE_INJECT_INVOCATION": "1"}
    try:
        role_vars = dict(target.role_vars, ledger_deployment_id="deploy-20261126-231500", ledger_status="success",
                         ledger_report_path=str(tmp_path / "report.html"))
        runs = [
            playbook(HERE / "record.yml", inventory=inventory, extra_vars=role_vars, verbosity=3, env=env),
            playbook(HERE / "modules.yml", inventory=inventory, verbosity=3, env=env, extra_vars={
                "read": dict(target.params, query="metrics"),
                "record": dict(target.params, import_from={"backend": "postgres", "dsn": target.dsn, "table": "missing"})}),
            playbook(REPO / "playbooks" / "ledger.yml", inventory=local_inventory(tmp_path / "g.yml"), verbosity=3, env=env,
                     extra_vars=dict(role_vars, ledger_hosts="all")),
        ]
        assert runs[0].rc == 0 and runs[2].rc == 0, runs[0].output[-2000:] + runs[2].output[-2000:]
        invocation = runs[0].task(RECORD_TASK)["result"]["invocation"]["module_args"]
        assert invocation["dsn"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"  # the arguments are in the output, masked
        assert "doesn't exist" in runs[1].output or "has no table missing" in runs[1].output
        for run in runs:
            assert target.password not in run.output
            assert target.password not in json.dumps(run.results)
    finally:
        target.close()


def seed(ledger):
    """About three weeks of history: successes, failures with rollbacks, one still running."""
    now = now_us()
    minute = 60 * 1000000
    t = now - 20 * 24 * 60 * minute
    n = rollbacks = 0
    while t < now - 2 * 60 * minute:
        n += 1
        did = "deploy-%s-%03d" % (format_time(t)[:10].replace("-", ""), n)
        status = "failed" if n % 5 == 0 else "rolled_back" if n % 7 == 0 else "success"
        base = dict(ledger.params, environment="local", project="homeiq-demo", host="localhost")
        L.record(dict(base, deployment_id=did, status=status, started_at=format_time(t),
                      finished_at=format_time(t + (2 + n % 4) * minute), commit_time=format_time(t - 30 * minute)))
        if status != "success":
            rollbacks += 1
            L.record(dict(base, deployment_id=did + "-rb", kind="rollback", rollback_of=did, status="success",
                          started_at=format_time(t + 8 * minute), finished_at=format_time(t + (9 + n % 3) * minute)))
        t += (7 + n % 11) * 60 * minute
    L.record(dict(ledger.params, deployment_id="deploy-running", environment="local", project="homeiq-demo", host="localhost"))
    return n + 1, n + 1 + rollbacks


def chromium():
    proc = subprocess.run([str(REPO / "scripts" / "ensure-chromium")], capture_output=True, text=True, timeout=1200, check=False)
    if proc.returncode != 0:
        pytest.fail("Chromium could not be set up (scripts/ensure-chromium):\n" + proc.stderr[-2000:])
    return proc.stdout.strip().splitlines()[-1]


def test_report_prints_history_and_renders_in_chromium(playbook, ledger, tmp_path):
    deploys, records = seed(ledger)
    inventory = tmp_path / "inv.yml"
    inventory.write_text("homeiq:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                         "      ansible_python_interpreter: %s\n" % sys.executable)
    report = tmp_path / "out" / "report.html"
    run = playbook(REPO / "ledger.yml", inventory=str(inventory),
                   extra_vars=dict(ledger.role_vars, ledger_environment="local", ledger_project="homeiq-demo",
                                   ledger_report_path=str(report), ledger_report_limit=0))
    assert run.rc == 0, run.output[-3000:]
    history = run.task("homeiq.deploy.ledger : History")["result"]["msg"]
    assert len(history) == 1 + records and "deploy-running" in history[1]
    metrics = run.task("homeiq.deploy.ledger : Metrics of the window")["result"]["msg"]
    assert metrics[1].startswith("Deployments: %d " % deploys)
    html = report.read_text()
    assert "<svg" in html and "deploy-running" in html
    assert "http://" not in html and "https://" not in html and " src=" not in html and " href=" not in html

    shot = tmp_path / "shot.png"
    profile = tmp_path / "chromium-profile"
    proc = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--user-data-dir=%s" % profile, "--hide-scrollbars", "--window-size=1280,1600",
                           "--screenshot=%s" % shot, report.as_uri()],
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    width, height, channels, rows = png_pixels(shot)
    assert (width, height) == (1280, 1600)
    colours, background = {}, 0
    for row in rows[::4]:
        for x in range(0, width * channels, channels * 4):
            px = tuple(row[x:x + 3])
            colours[px] = colours.get(px, 0) + 1
    total = sum(colours.values())
    top = max(colours.values())
    assert top / total < 0.9, "the page is (nearly) one colour: blank"
    assert len(colours) > 50, "too few colours for a page with charts"

    def near(rgb):
        return sum(n for px, n in colours.items() if all(abs(a - b) <= 8 for a, b in zip(px, rgb)))

    assert near((0x2e, 0x7d, 0x32)) > 50, "no success bars (green) rendered"
    assert near((0x1d, 0x23, 0x30)) > 500, "no page header rendered"


def _race_writer(params, barrier, index, errors):
    try:
        barrier.wait(timeout=60)
        for n in range(10):
            L.record(dict(params, deployment_id="deploy-20261126-p%02d-%d" % (index, n), status="success"))
    except Exception as exc:  # reported to the test, which fails on it
        errors.put("%s: %s" % (type(exc).__name__, exc))


def test_twenty_processes_racing_on_a_fresh_ledger(ledger):
    """20 processes released at once onto a ledger that does not exist yet: one creates it, none fails."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    barrier, errors = ctx.Barrier(20), ctx.Queue()
    procs = [ctx.Process(target=_race_writer, args=(ledger.params, barrier, i, errors)) for i in range(20)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert not problems, problems
    assert all(proc.exitcode == 0 for proc in procs)
    assert ledger.sql("SELECT count(*) FROM deployments")[0][0] == 200
    assert ledger.sql("SELECT count(*), max(version) FROM ledger_schema")[0] == (LATEST, LATEST)
