"""The domain-shaped demo (examples/homeiq-demo/domains) on the real engine.

Every Compose command runs as an operator runs it: from examples/homeiq-demo, with
`-f domains/<domain>/compose.yml --env-file .env`. The static cases check the files' models; one
stack (its own stack name, network and free loopback ports) is brought up once for the module,
domain by domain, core-platform first, and taken down with its network and images in a finalizer.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "homeiq-demo"
DOMAINS = {
    "core-platform": ("influxdb", "websocket-ingestion", "data-api", "admin-api"),
    "pattern-analysis": ("ai-pattern-service", "ai-automation-service"),
    "frontends": ("health-dashboard",),
}
DEV_ONLY = {"frontends": ("ha-simulator",)}
PORTS = {
    "influxdb": ("HOMEIQ_INFLUXDB_PORT", 8086),
    "websocket-ingestion": ("HOMEIQ_WEBSOCKET_INGESTION_PORT", 8001),
    "data-api": ("HOMEIQ_DATA_API_PORT", 8006),
    "admin-api": ("HOMEIQ_ADMIN_API_PORT", 8004),
    "ai-pattern-service": ("HOMEIQ_AI_PATTERN_SERVICE_PORT", 8034),
    "ai-automation-service": ("HOMEIQ_AI_AUTOMATION_SERVICE_PORT", 8036),
    "health-dashboard": ("HOMEIQ_HEALTH_DASHBOARD_PORT", 3000),
    "ha-simulator": ("HOMEIQ_HA_SIMULATOR_PORT", 8123),
}
RELEASE_VARS = {
    "core-platform": "HOMEIQ_CORE_PLATFORM_RELEASE",
    "pattern-analysis": "HOMEIQ_PATTERN_ANALYSIS_RELEASE",
    "frontends": "HOMEIQ_FRONTENDS_RELEASE",
}
LITERAL_DEFAULT = "${INFLUXDB_TOKEN:-homeiq-demo-default-token}"
SECRET_KEYS = ("INFLUXDB_TOKEN", "ADMIN_API_TOKEN", "HOME_ASSISTANT_TOKEN")


def read_env(path: Path) -> dict:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _sep, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def clean_env(extra: dict | None = None) -> dict:
    """The process environment without HOMEIQ_* or COMPOSE_* variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOMEIQ_", "COMPOSE_"))}
    env.update(extra or {})
    return env


def compose(domain: str, *args: str, env: dict | None = None, env_file: bool = True, cwd: Path = DEMO,
            timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = ["docker", "compose", "-f", f"domains/{domain}/compose.yml"] + (["--env-file", ".env"] if env_file else []) + list(args)
    return subprocess.run(cmd, cwd=cwd, env=env if env is not None else clean_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


def config(domain: str, *profiles: str, env: dict | None = None, env_file: bool = True) -> dict:
    args = [a for p in profiles for a in ("--profile", p)] + ["config", "--format", "json"]
    proc = compose(domain, *args, env=env, env_file=env_file)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


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


def http_get(port: int, path: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60, check=False)


def compose_minor() -> str:
    out = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True, check=True).stdout
    return ".".join(out.strip().lstrip("v").split(".")[:2])


# --- the files, without a stack ------------------------------------------------------------------

@pytest.mark.parametrize("domain", list(DOMAINS))
def test_each_domain_validates_from_the_demo_folder(domain):
    raw = yaml.safe_load((DEMO / "domains" / domain / "compose.yml").read_text())
    assert set(raw["services"]) == set(DOMAINS[domain] + DEV_ONLY.get(domain, ()))
    assert {name: raw["services"][name]["env_file"] for name in DOMAINS[domain]} == {name: ["../../.env"] for name in DOMAINS[domain]}
    dotenv = read_env(DEMO / ".env")
    cfg = config(domain, "production")
    assert cfg["name"] == f"homeiq-demo-{domain}"
    assert set(cfg["services"]) == set(DOMAINS[domain])
    for name, svc in cfg["services"].items():
        port_var, port = PORTS[name]
        assert svc["container_name"] == f"homeiq-demo-{name}"
        # Compose reads the env_file into `environment`: every key of the root .env, its values
        extra = {"HOMEIQ_UNHEALTHY_RELEASES": "unhealthy"} if name == "ai-pattern-service" else {}
        assert svc["environment"] == dict(dotenv, **extra)
        assert svc["build"]["context"] == str(DEMO)
        assert svc["build"]["dockerfile"] == f"services/{name}/Dockerfile"
        assert svc["build"]["args"] == {"BASE_IMAGE": "homeiq/base:bookworm", "RELEASE": "a"}
        assert [(p["host_ip"], str(p["published"]), p["target"]) for p in svc["ports"]] == [("127.0.0.1", str(port), port)], port_var
        assert svc["healthcheck"]["test"][-1].endswith(f"http://127.0.0.1:{port}/health")
        assert svc["deploy"]["resources"]["limits"]["memory"] and svc["deploy"]["resources"]["limits"]["cpus"]
        assert list(svc["networks"]) == ["homeiq-network"]
    network = cfg["networks"]["homeiq-network"]
    assert network["name"] == "homeiq-demo-network"
    assert bool(network.get("external")) is (domain != "core-platform")


def test_profiles_select_the_production_and_development_services():
    assert set(config("pattern-analysis")["services"]) == {"ai-pattern-service"}
    assert set(config("frontends", "development")["services"]) == {"health-dashboard", "ha-simulator"}
    assert config("frontends", "development")["services"]["ha-simulator"]["profiles"] == ["development"]
    assert config("pattern-analysis", "production")["services"]["ai-automation-service"]["profiles"] == ["production"]


def test_core_platform_interpolates_a_secret_with_a_committed_literal_default():
    text = (DEMO / "domains" / "core-platform" / "compose.yml").read_text()
    assert f"INFLUXDB_TOKEN: {LITERAL_DEFAULT}" in text
    real = read_env(DEMO / ".env")["INFLUXDB_TOKEN"]
    assert real and real != "homeiq-demo-default-token"
    with_env = config("core-platform", "production")
    assert {svc["environment"]["INFLUXDB_TOKEN"] for svc in with_env["services"].values()} == {real}


def test_without_the_env_file_option_the_literal_default_applies():
    """No --env-file: Compose looks for .env in domains/<domain>/, finds none, and uses the defaults."""
    without = config("core-platform", "production", env_file=False)
    assert {svc["environment"]["INFLUXDB_TOKEN"] for svc in without["services"].values()} == {"homeiq-demo-default-token"}
    # the containers still get the real file through env_file; only the interpolated key differs
    dotenv = read_env(DEMO / ".env")
    assert [svc["environment"] for svc in without["services"].values()] == [dict(dotenv, INFLUXDB_TOKEN="homeiq-demo-default-token")] * 4
    for domain in ("pattern-analysis", "frontends"):
        assert config(domain, "production", env_file=False) == config(domain, "production"), domain


def test_without_the_env_file_itself_every_domain_fails(tmp_path):
    copy = tmp_path / "homeiq-demo"
    shutil.copytree(DEMO, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / ".env").unlink()
    for domain in DOMAINS:
        proc = compose(domain, "--profile", "production", "config", env_file=False, cwd=copy)
        assert proc.returncode != 0, domain
        assert f"env file {copy / '.env'} not found" in proc.stderr, proc.stderr


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_one_domain_release_overrides_the_stack_release(domain):
    env = clean_env({"HOMEIQ_RELEASE": "b", RELEASE_VARS[domain]: "unhealthy"})
    for other in DOMAINS:
        releases = {svc["build"]["args"]["RELEASE"] for svc in config(other, "production", env=env)["services"].values()}
        assert releases == {"unhealthy" if other == domain else "b"}, other


def test_root_env_files_match_and_leave_the_single_demo_alone():
    env, example = read_env(DEMO / ".env"), read_env(DEMO / ".env.example")
    assert list(env) == list(example)
    for key in SECRET_KEYS:
        assert example[key].startswith("replace-with-") and env[key] != example[key], key
    assert "DEMO ONLY" in (DEMO / ".env").read_text()
    interpolated = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", (DEMO / "compose.yaml").read_text()))
    assert interpolated and not interpolated & set(env)
    assert not [key for key in env if key.startswith(("HOMEIQ_", "COMPOSE_"))]
    # compose.yaml's model is the same whether Compose reads the folder's .env or an empty env file
    base = ["docker", "compose", "-f", "compose.yaml", "config", "--format", "json"]
    other = DEMO / "releases" / "a.env"  # holds only HOMEIQ_RELEASE=a, which is compose.yaml's default
    with_dotenv = subprocess.run(base, cwd=DEMO, env=clean_env(), capture_output=True, text=True, check=True).stdout
    with_other = subprocess.run(base[:4] + ["--env-file", str(other)] + base[4:], cwd=DEMO, env=clean_env(),
                                capture_output=True, text=True, check=True).stdout
    assert json.loads(with_dotenv) == json.loads(with_other)


def test_the_include_file_is_rejected_by_compose():
    """docker-compose.all.yml includes the three domains; Compose refuses their two network definitions."""
    text = (DEMO / "docker-compose.all.yml").read_text()
    assert "CI ONLY" in text
    assert re.findall(r"^  - (\S+)$", text, re.M) == [f"domains/{d}/compose.yml" for d in DOMAINS]
    proc = subprocess.run(["docker", "compose", "-f", "docker-compose.all.yml", "--env-file", ".env", "config"],
                          cwd=DEMO, env=clean_env(), capture_output=True, text=True, check=False)
    assert proc.stdout == ""
    assert proc.stderr.strip() == "networks.homeiq-network conflicts with imported resource"
    expected_rc = {"2.26": 15, "2.40": 1}.get(compose_minor())
    assert proc.returncode == expected_rc if expected_rc is not None else proc.returncode != 0


# --- one stack for the module ----------------------------------------------------------------------

class Stack:
    def __init__(self):
        self.name = f"hqd-{uuid.uuid4().hex[:8]}"
        self.network = f"{self.name}-net"
        self.ports = dict(zip(PORTS, free_ports(len(PORTS))))
        self.vars = {"HOMEIQ_STACK": self.name, "HOMEIQ_NETWORK": self.network, "HOMEIQ_HEALTHCHECK_INTERVAL": "1s"}
        self.vars.update({PORTS[svc][0]: str(port) for svc, port in self.ports.items()})
        self.early = None
        self.early_containers = None
        self.timings = {}

    def env(self, **extra) -> dict:
        return clean_env(dict(self.vars, **extra))

    def compose(self, domain, *args, timeout=300, **extra):
        return compose(domain, *args, env=self.env(**extra), timeout=timeout)

    def up(self, domain, **extra):
        started = time.monotonic()
        proc = self.compose(domain, "--profile", "production", "up", "-d", "--wait", "--wait-timeout", "180", "--build", **extra)
        self.timings[domain] = round(time.monotonic() - started, 1)
        assert proc.returncode == 0, f"{domain}: {proc.stderr[-3000:]}"

    def ps(self, domain, *extra) -> list:
        proc = self.compose(domain, "--profile", "production", "--profile", "development", "ps", "--format", "json", *extra)
        assert proc.returncode == 0, proc.stderr
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def down(self):
        for domain in reversed(list(DOMAINS)):
            self.compose(domain, "--profile", "production", "--profile", "development", "down", "-v", "--rmi", "local",
                         "--remove-orphans", "--timeout", "2", timeout=120)
        docker("network", "rm", self.network)
        images = [f"{self.name}-{d}-{svc}" for d, services in DOMAINS.items() for svc in services]
        docker("image", "rm", "--force", *images)


@pytest.fixture(scope="module")
def stack():
    s = Stack()
    try:
        # Out of order first: pattern-analysis before the network exists.
        s.early = s.compose("pattern-analysis", "--profile", "production", "up", "-d", "--build")
        s.early_containers = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={s.name}-pattern-analysis").stdout.split()
        for domain in DOMAINS:
            s.up(domain)
        yield s
    finally:
        s.down()


def test_a_domain_deployed_before_core_platform_fails_naming_the_network(stack):
    assert stack.early.returncode != 0
    assert f"network {stack.network} not found" in stack.early.stderr, stack.early.stderr[-2000:]
    assert stack.early_containers == []


def test_the_stack_comes_up_domain_by_domain_every_container_healthy(stack):
    for domain, services in DOMAINS.items():
        rows = stack.ps(domain, "--all")
        assert sorted((r["Service"], r["Name"], r["State"], r["Health"]) for r in rows) == \
            sorted((svc, f"{stack.name}-{svc}", "running", "healthy") for svc in services), domain
        assert {r["Project"] for r in rows} == {f"{stack.name}-{domain}"}
    attached = json.loads(docker("network", "inspect", stack.network).stdout)[0]["Containers"]
    assert sorted(c["Name"] for c in attached.values()) == sorted(f"{stack.name}-{svc}" for svcs in DOMAINS.values() for svc in svcs)
    print("up --wait --build per domain (s):", stack.timings)


def test_the_dashboard_reaches_other_projects_through_the_shared_network(stack):
    dashboard = stack.ports["health-dashboard"]
    status, events = http_get(dashboard, "/api/v1/events?limit=2")
    assert status == 200 and [e["id"] for e in events] == ["evt-000000", "evt-000001"]
    status, stats = http_get(dashboard, "/api/v1/events/stats?period=15m")
    assert status == 200 and stats["total_events"] == 180 and stats["release"] == "a"
    status, services = http_get(dashboard, "/api/v1/services")  # admin-api, with nginx's bearer token
    assert status == 200 and len(services["services"]) == 7
    status, synergies = http_get(dashboard, "/ai-automation/api/synergies/stats")
    assert status == 200 and synergies["total_synergies"] == 3
    # the dashboard's only network is the shared one: the names were resolved there
    networks = json.loads(docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", f"{stack.name}-health-dashboard").stdout)
    assert list(networks) == [stack.network]


def test_the_development_only_service_is_not_started_by_a_production_deploy(stack):
    assert "ha-simulator" not in {r["Service"] for r in stack.ps("frontends", "--all")}
    assert docker("ps", "-aq", "--filter", f"name=^{stack.name}-ha-simulator$").stdout.strip() == ""


def test_the_infrastructure_files_are_the_ones_the_services_read(stack):
    mounted = docker("exec", f"{stack.name}-influxdb", "cat", "/etc/homeiq/influxdb/config.yml")
    assert mounted.returncode == 0 and mounted.stdout == (DEMO / "infrastructure" / "influxdb" / "config.yml").read_text()
    rendered = docker("exec", f"{stack.name}-health-dashboard", "grep", "-c", "resolver 127.0.0.11", "/etc/nginx/nginx.conf")
    assert rendered.returncode == 0 and rendered.stdout.strip() == "1"


def test_redeploying_one_domain_leaves_the_others_and_the_dashboard_follows(stack):
    """Runs last: core-platform goes to release b alone; the dashboard reaches the new data-api."""
    def started(names):
        return {n: docker("inspect", "--format", "{{.Id}} {{.State.StartedAt}}", n).stdout.strip() for n in names}

    others = [f"{stack.name}-{svc}" for d in ("pattern-analysis", "frontends") for svc in DOMAINS[d]]
    before = started(others)
    stack.up("core-platform", HOMEIQ_CORE_PLATFORM_RELEASE="b")
    assert started(others) == before
    assert http_get(stack.ports["data-api"], "/health")[1]["release"] == "b"
    assert http_get(stack.ports["ai-pattern-service"], "/health")[1]["release"] == "a"
    deadline = time.monotonic() + 20
    seen = None
    while time.monotonic() < deadline:
        seen = http_get(stack.ports["health-dashboard"], "/api/v1/events/stats")
        if seen[0] == 200 and seen[1]["release"] == "b":
            break
        time.sleep(0.5)
    assert seen[0] == 200 and seen[1]["release"] == "b", seen


def test_an_unhealthy_release_fails_only_its_own_domain(stack):
    """Runs last (it leaves two domains failed): pattern-analysis and frontends each get release
    `unhealthy` alone, at the same time; each `up --wait` fails naming its own container, and
    core-platform's containers are not touched."""
    core = [f"{stack.name}-{svc}" for svc in DOMAINS["core-platform"]]
    before = {n: docker("inspect", "--format", "{{.Id}} {{.State.StartedAt}}", n).stdout.strip() for n in core}

    def fail(domain):
        return stack.compose(domain, "--profile", "production", "up", "-d", "--wait", "--wait-timeout", "120", "--build",
                             **{RELEASE_VARS[domain]: "unhealthy"})

    with ThreadPoolExecutor(max_workers=2) as pool:
        pattern, frontends = pool.map(fail, ["pattern-analysis", "frontends"])
    assert pattern.returncode == 1 and f"container {stack.name}-ai-pattern-service is unhealthy" in pattern.stderr, pattern.stderr[-2000:]
    assert frontends.returncode == 1 and f"container {stack.name}-health-dashboard is unhealthy" in frontends.stderr, frontends.stderr[-2000:]
    status, body = http_get(stack.ports["ai-pattern-service"], "/health")
    assert isinstance(body.pop("uptime_seconds"), float)
    assert (status, body) == (503, {"status": "unhealthy", "service": "ai-pattern-service", "release": "unhealthy",
                                    "reason": "release listed in HOMEIQ_UNHEALTHY_RELEASES"})
    assert http_get(stack.ports["health-dashboard"], "/health") == (503, {
        "status": "unhealthy", "service": "health-dashboard", "release": "unhealthy"})
    assert {n: docker("inspect", "--format", "{{.Id}} {{.State.StartedAt}}", n).stdout.strip() for n in core} == before
    assert http_get(stack.ports["data-api"], "/health")[0] == 200
