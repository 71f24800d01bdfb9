"""route_order_check against the demo stack in real containers: release `routebug` registers
/api/v1/synergies/{synergy_id} before /stats in ai-pattern-service, and all three modes find it;
release `a` has the right order and the live modes pass it."""
from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
import requests
import yaml

sys.path.insert(0, str(Path(__file__).parent / "probe"))
import demostack  # noqa: E402

BUG = ("/api/v1/synergies/stats", "/api/v1/synergies/{synergy_id}")


@pytest.fixture(scope="module")
def demo():
    project = demostack.DemoProject("routes")
    try:
        project.up("ai-pattern-service", release="routebug")
        yield project
    finally:
        project.down()


def run_checks(playbook, tmp_path, cases):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    tasks = [{"name": label, "homeiq.deploy.route_order_check": args, "ignore_errors": True} for label, args in cases.items()]
    play = tmp_path / f"play-{uuid.uuid4().hex[:6]}.yml"
    play.write_text(yaml.safe_dump([{"name": "routes", "hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                                   sort_keys=False))
    run = playbook(play, inventory=inventory)
    return {label: run.task(label) for label in cases}


def shadowed(res):
    return [(s["path"], s["shadowed_by"]) for s in res["result"]["shadowed"]]


def modes(demo):
    return {
        "container": {"container": demo.container("ai-pattern-service"), "app": "app:app"},
        "openapi": {"mode": "openapi", "url": demo.url("ai-pattern-service", "/openapi.json")},
        "source": {"mode": "source", "path": str(demostack.DEMO), "app": "ai-pattern-service.app:app"},
    }


def test_routebug_release_is_found_by_all_three_modes(demo, playbook, tmp_path):
    # the symptom first: the stats request reaches get_synergy("stats")
    resp = requests.get(demo.url("ai-pattern-service", "/api/v1/synergies/stats"), timeout=10)
    assert resp.status_code == 404 and resp.json()["detail"] == "Synergy stats not found"
    results = run_checks(playbook, tmp_path, modes(demo))
    for mode, res in results.items():
        assert res["status"] == "ignored", (mode, res["result"].get("msg"))
        assert shadowed(res) == [BUG], mode
        assert "GET /api/v1/synergies/stats (shadowed by /api/v1/synergies/{synergy_id})" in res["result"]["msg"]
    assert results["container"]["result"]["versions"]["fastapi"] == "0.92.0"
    # static analysis cannot know the release: it names the condition the bug depends on
    assert results["source"]["result"]["shadowed"][0]["conditions"][0].startswith(
        "first branch of the if at services/ai-pattern-service/app.py:")


def test_release_a_passes_the_live_modes(demo, playbook, tmp_path):
    demo.up("ai-pattern-service", release="a")
    resp = requests.get(demo.url("ai-pattern-service", "/api/v1/synergies/stats"), timeout=10)
    assert resp.status_code == 200 and resp.json()["release"] == "a"
    cases = modes(demo)
    del cases["source"]
    cases["expect_before"] = dict(cases["container"], expect_before=[list(BUG)])
    results = run_checks(playbook, tmp_path, cases)
    for mode, res in results.items():
        assert res["status"] == "ok", (mode, res["result"].get("msg"))
        assert res["result"]["ok"] is True and res["result"]["shadowed"] == []
