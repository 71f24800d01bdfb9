"""The demo stack (examples/homeiq-demo) on the real engine: every endpoint, the 401s, the releases.

Each case runs its own Compose project (unique name, free host ports chosen here, release and
ports passed with `--env-file`) and removes its containers, volumes and images in a finalizer.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "homeiq-demo"
COMPOSE_FILE = DEMO / "compose.yaml"
SERVICES = {
    "influxdb": ("HOMEIQ_INFLUXDB_PORT", 8086),
    "websocket-ingestion": ("HOMEIQ_WEBSOCKET_INGESTION_PORT", 8001),
    "data-api": ("HOMEIQ_DATA_API_PORT", 8006),
    "admin-api": ("HOMEIQ_ADMIN_API_PORT", 8004),
    "ai-pattern-service": ("HOMEIQ_AI_PATTERN_SERVICE_PORT", 8034),
    "ai-automation-service": ("HOMEIQ_AI_AUTOMATION_SERVICE_PORT", 8036),
    "health-dashboard": ("HOMEIQ_HEALTH_DASHBOARD_PORT", 3000),
}


def demo_env_file() -> dict:
    values = {}
    for line in (DEMO / "demo.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
    return values


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        while len(sockets) < count:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def clean_env() -> dict:
    """The process environment without any HOMEIQ_* or COMPOSE_* variable leaking in."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("HOMEIQ_", "COMPOSE_"))}


class Project:
    """One Compose project of the demo stack with its own name, ports and release env file."""

    def __init__(self, tmp_path: Path, release: str, extra: dict | None = None):
        self.name = f"homeiq-test-{uuid.uuid4().hex[:8]}"
        self.ports = dict(zip(SERVICES, free_ports(len(SERVICES))))
        self.env_file = tmp_path / f"{self.name}.env"
        lines = [f"HOMEIQ_RELEASE={release}"] + [f"{key}={value}" for key, value in (extra or {}).items()]
        lines += [f"{SERVICES[svc][0]}={port}" for svc, port in self.ports.items()]
        self.env_file.write_text("\n".join(lines) + "\n")

    def compose(self, *args: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
        cmd = ["docker", "compose", "-f", str(COMPOSE_FILE), "-p", self.name, "--env-file", str(self.env_file), *args]
        proc = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        return proc

    def image_ids(self) -> dict:
        ids = {}
        for svc in SERVICES:
            out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", f"{self.name}-{svc}"],
                                 capture_output=True, text=True, check=True)
            ids[svc] = out.stdout.strip()
        return ids

    def get(self, service: str, path: str, headers: dict | None = None) -> tuple[int, object]:
        url = f"http://127.0.0.1:{self.ports[service]}{path}"
        request = urllib.request.Request(url, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode()

    def down(self) -> None:
        self.compose("down", "-v", "--rmi", "local", "--timeout", "2", check=False)
        # `down` finds nothing to remove in a project that was only built: remove its images by name.
        images = [f"{self.name}-{svc}" for svc in SERVICES]
        subprocess.run(["docker", "image", "rm", "--force", *images], capture_output=True, check=False)


@pytest.fixture
def project_factory(tmp_path):
    made = []

    def make(release: str, **extra: str) -> Project:
        project = Project(tmp_path, release, extra)
        made.append(project)
        return project

    yield make
    for project in made:
        project.down()


def test_config_validates_without_env_file():
    proc = subprocess.run(["docker", "compose", "-f", str(COMPOSE_FILE), "config", "--format", "json"],
                          env=clean_env(), capture_output=True, text=True, check=True)
    config = json.loads(proc.stdout)
    assert set(config["services"]) == set(SERVICES)
    for name, svc in config["services"].items():
        assert "image" not in svc and "container_name" not in svc, name
        assert svc["build"]["args"] == {"BASE_IMAGE": "homeiq/base:bookworm", "RELEASE": "a"}
        assert [(p["host_ip"], str(p["published"]), p["target"]) for p in svc["ports"]] == \
            [("127.0.0.1", str(SERVICES[name][1]), SERVICES[name][1])]
        assert svc["healthcheck"]["test"][-1] == f"http://127.0.0.1:{SERVICES[name][1]}/health"
        assert svc["deploy"]["resources"]["limits"]["memory"]


def test_release_a_serves_every_endpoint(project_factory):
    project = project_factory("a")
    project.compose("build")
    first_ids = project.image_ids()
    project.compose("up", "-d", "--wait")
    rows = [json.loads(line) for line in project.compose("ps", "--format", "json").stdout.splitlines() if line.strip()]
    assert sorted((row["Service"], row["Health"]) for row in rows) == sorted((svc, "healthy") for svc in SERVICES)
    secrets = demo_env_file()
    influx_ok = {"Authorization": f"Token {secrets['INFLUXDB_TOKEN']}"}
    admin_ok = {"Authorization": f"Bearer {secrets['ADMIN_API_TOKEN']}"}

    for svc in SERVICES:
        status, body = project.get(svc, "/health")
        assert status == 200, (svc, body)
        assert body["service"] == svc and body["release"] == "a", body
        if svc != "influxdb":
            assert body["status"] == "healthy", body
    status, body = project.get("influxdb", "/health")
    assert body["name"] == "influxdb" and body["status"] == "pass" and body["version"]

    for path in ("/api/v2/buckets", "/api/v2/orgs"):
        for headers in (None, {"Authorization": "Token wrong-token"}, {"Authorization": f"Bearer {secrets['INFLUXDB_TOKEN']}"}):
            status, body = project.get("influxdb", path, headers)
            assert (status, body["code"]) == (401, "unauthorized"), (path, headers)
    assert project.get("influxdb", "/api/v2/buckets", influx_ok)[1]["buckets"][0]["name"] == secrets["INFLUXDB_BUCKET"]
    assert project.get("influxdb", "/api/v2/orgs", influx_ok)[1]["orgs"][0]["name"] == secrets["INFLUXDB_ORG"]

    status, events = project.get("data-api", "/api/v1/events?limit=5")
    assert status == 200 and isinstance(events, list) and len(events) == 5
    status, event_stats = project.get("data-api", "/api/v1/events/stats?period=1h")
    assert status == 200 and event_stats["period"] == "1h" and event_stats["total_events"] > 0

    assert project.get("admin-api", "/api/v1/real-time-metrics")[0] == 200
    for path in ("/api/v1/config", "/api/v1/services"):
        assert project.get("admin-api", path)[0] == 401
        assert project.get("admin-api", path, {"Authorization": "Bearer wrong-token"})[0] == 401
        status, body = project.get("admin-api", path, admin_ok)
        assert status == 200
        assert secrets["ADMIN_API_TOKEN"] not in json.dumps(body)

    status, stats = project.get("ai-pattern-service", "/api/v1/synergies/stats")
    assert status == 200 and stats["total_synergies"] == 3 and stats["release"] == "a"
    assert project.get("ai-pattern-service", "/api/v1/synergies/syn-001")[1]["id"] == "syn-001"
    assert project.get("ai-pattern-service", "/api/v1/synergies/no-such-id")[0] == 404
    assert project.get("ai-automation-service", "/api/synergies/stats") == (200, stats)

    status, page = project.get("health-dashboard", "/")
    assert status == 200 and "HomeIQ health dashboard" in page
    assert project.get("health-dashboard", "/api/v1/events?limit=2") == (200, events[:2])
    assert project.get("health-dashboard", "/api/v1/events/stats?period=1h") == (200, event_stats)
    status, metrics = project.get("health-dashboard", "/api/v1/real-time-metrics")
    assert status == 200 and metrics["release"] == "a"
    assert project.get("health-dashboard", "/api/v1/services")[0] == 200  # token injected by nginx
    assert project.get("health-dashboard", "/ai-automation/api/synergies/stats") == (200, stats)
    assert project.get("health-dashboard", "/ai-automation/health")[1]["service"] == "ai-automation-service"

    nginx = project.compose("exec", "-T", "health-dashboard", "nginx", "-t", check=False)
    assert nginx.returncode == 0 and "test is successful" in nginx.stderr, nginx.stderr

    project.compose("build")
    assert project.image_ids() == first_ids, "rebuilding the same release must give the same image IDs"


def test_release_b_differs_and_routebug_shadows_stats(project_factory):
    a = project_factory("a")
    a.compose("build")
    b = project_factory("b")
    b.compose("build")
    ids_a, ids_b = a.image_ids(), b.image_ids()
    assert all(ids_a[svc] != ids_b[svc] for svc in SERVICES), (ids_a, ids_b)

    bug = project_factory("routebug", HOMEIQ_HEALTHCHECK_INTERVAL="1s")
    bug.compose("up", "-d", "--wait", "--build", "--no-deps", "ai-pattern-service")
    assert bug.get("ai-pattern-service", "/health")[1]["release"] == "routebug"
    status, body = bug.get("ai-pattern-service", "/api/v1/synergies/stats")
    assert status == 404 and body["detail"] == "Synergy stats not found"  # answered by get_synergy("stats")
    assert bug.get("ai-pattern-service", "/api/v1/synergies/syn-002")[0] == 200


def test_release_unhealthy_fails_wait(project_factory):
    project = project_factory("unhealthy", HOMEIQ_HEALTHCHECK_INTERVAL="1s")
    proc = project.compose("up", "-d", "--wait", "--build", "--no-deps", "data-api", check=False)
    assert proc.returncode != 0
    assert "is unhealthy" in proc.stderr, proc.stderr[-2000:]
    health = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}", f"{project.name}-data-api-1"],
                            capture_output=True, text=True, check=True)
    assert health.stdout.strip() == "unhealthy"
    status, body = project.get("data-api", "/health")
    assert status == 503 and body["status"] == "unhealthy" and body["release"] == "unhealthy"


def test_release_buildfail_fails_build(project_factory):
    project = project_factory("buildfail")
    proc = project.compose("build", "data-api", check=False)
    assert proc.returncode != 0
    assert "release buildfail fails its build on purpose" in proc.stdout + proc.stderr
