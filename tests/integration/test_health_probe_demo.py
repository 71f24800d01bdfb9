"""health_probe against the demo stack in real containers: release `a` passes; release
`unhealthy` (data-api's /health answers 503 and its container turns unhealthy) fails naming
data-api, while a container-only check of the runbook's kind ("Up" means running) would pass."""
from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import docker
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "probe"))
import demostack  # noqa: E402

SERVICES = ("influxdb", "data-api", "admin-api")


@pytest.fixture(scope="module")
def demo():
    project = demostack.DemoProject("health")
    try:
        project.up(*SERVICES, release="a")
        yield project
    finally:
        project.down()


def probe(playbook, tmp_path, args):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    play = tmp_path / f"play-{uuid.uuid4().hex[:6]}.yml"
    play.write_text(yaml.safe_dump([{"name": "health", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "health_probe", "homeiq.deploy.health_probe": args}]}], sort_keys=False))
    run = playbook(play, inventory=inventory, env={"ANSIBLE_INJECT_INVOCATION": "1"})
    return run, run.task("health_probe")


def targets(demo):
    token = demostack.demo_env()["ADMIN_API_TOKEN"]
    return [
        {"name": "influxdb", "url": demo.url("influxdb", "/health"), "critical": True, "json_query": "status",
         "json_equals": "pass", "container": demo.container("influxdb")},
        {"name": "data-api", "url": demo.url("data-api", "/health"), "critical": True, "json_query": "status",
         "json_equals": "healthy", "container": demo.container("data-api")},
        {"name": "admin-api", "url": demo.url("admin-api", "/health"), "critical": True,
         "container": demo.container("admin-api")},
        {"name": "admin-api services", "url": demo.url("admin-api", "/api/v1/services"),
         "headers": {"Authorization": "Bearer " + token}, "max_latency_ms": 2000},
        {"name": "events", "url": demo.url("data-api", "/api/v1/events/stats?period=1h"),
         "json_query": "total_events > `0`", "max_latency_ms": 2000},
    ]


def test_release_a_passes(demo, playbook, tmp_path):
    report = tmp_path / "health.json"
    run, res = probe(playbook, tmp_path, {"targets": targets(demo), "report_path": str(report), "deadline": 60,
                                          "compose_project": demo.name})
    assert res["status"] == "ok", res["result"].get("msg")
    assert res["result"]["overall_status"] == "pass"
    assert {s["container_status"] for s in res["result"]["services"][:3]} == {"running (healthy)"}
    # every container of the project is judged too, with a null url
    containers = [s for s in res["result"]["services"] if s["url"] is None]
    assert sorted(s["name"] for s in containers) == sorted(demo.container(svc) for svc in SERVICES)
    assert all(s["critical"] and s["status"] == "healthy" for s in containers)
    assert json.loads(report.read_text())["summary"]["passed"] == 8
    assert demostack.demo_env()["ADMIN_API_TOKEN"] not in run.output + json.dumps(run.results) + report.read_text()


def test_unhealthy_release_fails_naming_data_api(demo, playbook, tmp_path):
    demo.up("data-api", release="unhealthy", wait=False)
    client = docker.from_env()
    report = tmp_path / "health.json"
    run, res = probe(playbook, tmp_path, {"targets": targets(demo), "report_path": str(report), "retries": 10,
                                          "retry_delay": 1, "deadline": 90})
    assert res["status"] == "failed"
    msg = res["result"]["msg"]
    assert msg.startswith("health fail: 1 of 5 services unhealthy: data-api (critical): status 503, expected 200")
    assert msg.endswith("report in %s" % report)
    data_api = [s for s in res["result"]["services"] if s["name"] == "data-api"][0]
    assert data_api["status_code"] == 503 and data_api["attempts"] == 11
    # the container is up, which is all the runbook's `grep Up` looked at
    assert client.containers.get(demo.container("data-api")).status == "running"
    assert json.loads(report.read_text())["overall_status"] == "fail"
