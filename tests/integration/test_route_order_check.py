"""route_order_check through real ansible-playbook runs: static analysis of source trees shaped
like HomeIQ's buggy routers, introspection inside a real container running FastAPI 0.92 under
uvicorn, and the OpenAPI documents that container serves."""
from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import docker
import pytest
import requests
import yaml

ROUTES = Path(__file__).parent / "routes"
BASE_IMAGE = "homeiq/base:bookworm"

# fixture -> (GET paths shadowed, each by which route)
EXPECTED = {
    "data_api": [(p, "/api/devices/{device_id}") for p in (
        "/api/devices/reliability", "/api/devices/health-summary", "/api/devices/maintenance-alerts",
        "/api/devices/power-anomalies", "/api/devices/recommendations", "/api/devices/compare")],
    "discovery_api": [("/discovery/devices/list", "/discovery/devices/{device_id}")],
    "task_service": [("/api/tasks/history", "/api/tasks/{task_id}")],
    "ai_pattern_service": [("/api/v1/synergies/stats", "/api/v1/synergies/{synergy_id}")],
    "correct_app": [],
    "convertor_app": [("/orders/0", "/orders/{order_id:int}"), ("/blobs/meta/summary", "/blobs/{blob_path:path}"),
                      ("/prices/{whole:int}", "/prices/{amount:float}"), ("/typed/latest", "/typed/{thing_id}")],
    "multi_router_app": [("/api/v1/homes/{home_id}/rooms/occupancy", "/api/v1/homes/{home_id}/rooms/{room_id}"),
                         ("/api/v1/homes/summary", "/api/v1/homes/{home_id}")],
}


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    return path


@pytest.fixture
def check(playbook, tmp_path, inventory):
    """Runs route_order_check with `args`; returns (run, task result)."""
    def _run(args, check_mode=False, env=None):
        play = tmp_path / f"play-{uuid.uuid4().hex[:6]}.yml"
        play.write_text(yaml.safe_dump([{"name": "routes", "hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "route_order_check", "homeiq.deploy.route_order_check": args, "register": "routes"}]}],
            sort_keys=False))
        run = playbook(play, inventory=inventory, check=check_mode, env=env)
        return run, run.task("route_order_check")
    return _run


@pytest.fixture
def check_many(playbook, tmp_path, inventory):
    """Runs one route_order_check task per entry of {label: args} in one playbook; returns {label: task result}."""
    def _run(cases):
        tasks = [{"name": "check %s" % label, "homeiq.deploy.route_order_check": args, "ignore_errors": True}
                 for label, args in cases.items()]
        play = tmp_path / f"play-{uuid.uuid4().hex[:6]}.yml"
        play.write_text(yaml.safe_dump([{"name": "routes", "hosts": "localhost", "gather_facts": False,
                                         "tasks": tasks}], sort_keys=False))
        run = playbook(play, inventory=inventory)
        return {label: run.task("check %s" % label) for label in cases}
    return _run


def found(res):
    return [(s["path"], s["shadowed_by"]) for s in res["result"]["shadowed"]]


def test_source_mode_finds_the_bugs(check_many):
    results = check_many({fx: {"mode": "source", "path": str(ROUTES / fx)} for fx in EXPECTED})
    for fixture, res in results.items():
        assert found(res) == EXPECTED[fixture], fixture
        assert res["status"] == ("ok" if not EXPECTED[fixture] else "ignored"), fixture
        assert res["result"]["changed"] is False
        if EXPECTED[fixture]:
            first = EXPECTED[fixture][0]
            assert "GET %s (shadowed by %s)" % first in res["result"]["msg"]


def test_source_mode_with_filter_allow_and_expect_before(check):
    res = check({"mode": "source", "path": str(ROUTES / "data_api"), "path_filter": "^/api/devices/(compare|reliability)",
                 "allow": ["GET /api/devices/reliability"],
                 "expect_before": [["/api/v1/events/stats", "/api/v1/events/{event_id}"]]})[1]
    assert found(res) == [("/api/devices/compare", "/api/devices/{device_id}")]
    assert [a["path"] for a in res["result"]["allowed"]] == ["/api/devices/reliability"]
    reported = [r["path"] for r in res["result"]["routes"]]
    assert reported == ["/api/devices/reliability", "/api/devices/compare", "/api/devices/compare"]
    assert res["result"]["out_of_order"] == []


def test_check_mode_gives_the_same_answer(check):
    for check_mode in (True, False):
        res = check({"mode": "source", "path": str(ROUTES / "task_service")}, check_mode=check_mode)[1]
        assert res["status"] == "failed" and res["result"]["changed"] is False
        assert found(res) == EXPECTED["task_service"]


# ---- a real container running the apps under uvicorn (FastAPI 0.92 from Debian) ------------

SERVED = {"ai_pattern_service": 8000, "convertor_app": 8001, "correct_app": 8002}


@pytest.fixture(scope="module")
def app_container():
    client = docker.from_env()
    name = "homeiq-routecheck-" + uuid.uuid4().hex[:8]
    script = " & ".join("(cd /srv/routes/%s && exec python3 -m uvicorn src.main:app --host 0.0.0.0 --port %d)" % (fx, port)
                        for fx, port in SERVED.items()) + " & wait"
    ctr = client.containers.run(
        BASE_IMAGE, ["sh", "-c", script], name=name, detach=True,
        volumes={str(ROUTES): {"bind": "/srv/routes", "mode": "ro"}},
        environment={"PYTHONDONTWRITEBYTECODE": "1"},
        ports={"%d/tcp" % p: ("127.0.0.1", None) for p in SERVED.values()},
        labels={"homeiq.test": "route_order_check"})
    try:
        ctr.reload()
        ports = {fx: int(ctr.attrs["NetworkSettings"]["Ports"]["%d/tcp" % p][0]["HostPort"]) for fx, p in SERVED.items()}
        deadline = time.monotonic() + 60
        pending = set(ports)
        while pending and time.monotonic() < deadline:
            for fx in list(pending):
                try:
                    if requests.get("http://127.0.0.1:%d/openapi.json" % ports[fx], timeout=2).status_code == 200:
                        pending.discard(fx)
                except requests.RequestException:
                    pass
            time.sleep(0.3)
        assert not pending, ctr.logs()[-2000:]
        yield name, ports
    finally:
        ctr.remove(force=True)


def test_the_bug_is_real_in_the_running_app(app_container):
    ports = app_container[1]
    resp = requests.get("http://127.0.0.1:%d/api/v1/synergies/stats" % ports["ai_pattern_service"], timeout=5)
    # answered by get_synergy("stats"), not by the stats handler
    assert resp.status_code == 404 and resp.json() == {"detail": "synergy stats not found"}


def test_container_mode_introspects_the_running_app(check_many, app_container):
    name = app_container[0]
    results = check_many({fx: {"container": name, "app": "src.main:app", "workdir": "/srv/routes/" + fx}
                          for fx in EXPECTED})
    for fixture, res in results.items():
        assert found(res) == EXPECTED[fixture], (fixture, res["result"].get("msg"))
        assert res["result"]["versions"]["fastapi"] == "0.92.0"
        paths = [r["path"] for r in res["result"]["routes"]]
        assert "/openapi.json" in paths  # the framework's own routes are there too, in their place


def test_openapi_mode_finds_the_bug_and_says_what_it_cannot_see(check, app_container):
    ports = app_container[1]
    res = check({"mode": "openapi", "url": "http://127.0.0.1:%d/openapi.json" % ports["ai_pattern_service"]})[1]
    assert found(res) == EXPECTED["ai_pattern_service"]
    assert any("drop path convertors" in n for n in res["result"]["notes"])


def test_openapi_mode_cannot_see_convertors_container_mode_can(check, app_container):
    name, ports = app_container
    via_openapi = check({"mode": "openapi", "url": "http://127.0.0.1:%d/openapi.json" % ports["convertor_app"],
                         "path_filter": "^/orders/"})[1]
    via_container = check({"container": name, "workdir": "/srv/routes/convertor_app", "path_filter": "^/orders/"})[1]
    # {order_id:int} appears as {order_id} in the document, so /orders/stats looks shadowed there
    assert ("/orders/stats", "/orders/{order_id}") in found(via_openapi)
    assert found(via_container) == [("/orders/0", "/orders/{order_id:int}")]


def test_openapi_mode_passes_a_correct_app(check, app_container):
    ports = app_container[1]
    res = check({"mode": "openapi", "url": "http://127.0.0.1:%d/openapi.json" % ports["correct_app"],
                 "path_filter": "^/api/"})[1]
    assert res["status"] == "ok" and res["result"]["ok"] is True


def test_container_and_openapi_errors_are_one_line(check_many, app_container):
    name, ports = app_container
    res = check_many({
        "bad app": {"container": name, "app": "src.nope:app", "workdir": "/srv/routes/correct_app"},
        "no container": {"container": "homeiq-no-such-" + uuid.uuid4().hex[:6]},
        "not openapi": {"mode": "openapi", "url": "http://127.0.0.1:%d/health" % ports["correct_app"]},
    })
    assert all(r["status"] == "ignored" for r in res.values())
    assert res["bad app"]["result"]["msg"].startswith(
        "in container %s: cannot import src.nope:app: ModuleNotFoundError" % name)
    assert res["no container"]["result"]["msg"].endswith("not found; give the container's name as docker ps shows it")
    assert res["not openapi"]["result"]["msg"] == "the document has no paths object; is the url an OpenAPI document?"


def test_a_stopped_container_is_refused(check):
    client = docker.from_env()
    name = "homeiq-routecheck-stopped-" + uuid.uuid4().hex[:8]
    ctr = client.containers.create(BASE_IMAGE, ["true"], name=name)
    try:
        res = check({"container": name})[1]
        assert res["result"]["msg"] == "container %s is created, not running; start it before checking its routes" % name
    finally:
        ctr.remove(force=True)
