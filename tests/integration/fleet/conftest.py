"""Fleet fixtures: test hosts reached over real SSH (scripts/test-hosts), one network namespace
each, sharing this machine's filesystem and Docker engine; each host deploys its own compose
project with its own ports."""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.integration.ledger.ledger_support import PgSchema, postgres_dsn

SCRIPT = REPO / "scripts" / "test-hosts"
DEMO = REPO / "examples" / "homeiq-demo"
LOCAL_GROUP_VARS = REPO / "inventories" / "local" / "group_vars" / "all"
FLEET_SIZE = 3
SERVICE_PORTS = {
    "influxdb": "HOMEIQ_INFLUXDB_PORT",
    "websocket-ingestion": "HOMEIQ_WEBSOCKET_INGESTION_PORT",
    "data-api": "HOMEIQ_DATA_API_PORT",
    "admin-api": "HOMEIQ_ADMIN_API_PORT",
    "ai-pattern-service": "HOMEIQ_AI_PATTERN_SERVICE_PORT",
    "ai-automation-service": "HOMEIQ_AI_AUTOMATION_SERVICE_PORT",
    "health-dashboard": "HOMEIQ_HEALTH_DASHBOARD_PORT",
}


@dataclass
class FleetHost:
    name: str
    namespace: str
    address: str
    project: str
    env_file: str
    ports: dict = field(default_factory=dict)

    def sh(self, *cmd, timeout=30):
        """Runs a command inside the host's network namespace (as the host would)."""
        return subprocess.run(["ip", "netns", "exec", self.namespace, *cmd], capture_output=True, text=True,
                              timeout=timeout, check=False)

    def get(self, port_var, path="/health"):
        """GET http://127.0.0.1:<port><path> from inside the host: (status code, body)."""
        proc = self.sh("curl", "-sS", "--max-time", "5", "-w", "\n%{http_code}",
                       f"http://127.0.0.1:{self.ports[port_var]}{path}")
        body, _sep, code = proc.stdout.rpartition("\n")
        return int(code or 0), body


@dataclass
class Fleet:
    """The test hosts, their inventory, the script's settings (its environment) and the
    PostgreSQL ledger they share."""
    dir: Path
    inventory: Path
    env: dict
    hosts: list
    ledger: PgSchema = None

    def records(self, where="1 = 1", params=None):
        """Ledger rows as dicts, oldest first."""
        cols = ("deployment_id", "kind", "status", "rollback_of", "host", "environment", "images", "notes")
        rows = self.ledger.execute("SELECT %s FROM deployments WHERE %s ORDER BY started_at_us, deployment_id"
                                   % (", ".join(cols), where), params)
        return [dict(zip(cols, r)) for r in rows]

    def script(self, *args, check=True, timeout=300):
        proc = subprocess.run([str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"scripts/test-hosts {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}{proc.stderr}")
        return proc

    def host(self, name):
        return next(h for h in self.hosts if h.name == name)

    def stop_ssh(self, name):
        self.script("stop-ssh", name)

    def start_ssh(self, name):
        self.script("start-ssh", name)

    def containers(self, engine, name):
        """service -> container (Docker SDK object) of a host's compose project."""
        project = self.host(name).project
        return {c.labels["com.docker.compose.service"]: c
                for c in engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})}


def write_fleet_group_vars(inventory_dir, ledger_dsn):
    """The test hosts run the local environment's settings (inventories/local), with what differs
    on a test host overridden: the project folder as an absolute path, the host's own ports, and
    the shared PostgreSQL ledger (each host reaches it on its own loopback through its bridge)."""
    group_vars = inventory_dir / "group_vars" / "all"
    group_vars.mkdir(parents=True, exist_ok=True)
    for f in sorted(LOCAL_GROUP_VARS.glob("*.yml")):
        shutil.copy(f, group_vars / f.name)
    overrides = {
        "deploy_project_src": str(DEMO),
        "deploy_wait_timeout": 150,
        "ledger_environment": "fleet-test",
        "ledger_backend": "postgres",
        "ledger_dsn": ledger_dsn,
        # The hosts' projects differ in name here (one engine); a real fleet shares one project name.
        "rollout_lock_scope": "fleet-test/homeiq",
        # Latency is not what these tests are about, and three stacks share two busy cores.
        "verify_max_latency_ms": 5000,
        # Each host's own ports (the local files read them from the controller's environment).
        "preflight_influxdb_url": "http://127.0.0.1:{{ homeiq_ports.HOMEIQ_INFLUXDB_PORT }}",
        "verify_demo_ports": {service: "{{ homeiq_ports.%s }}" % var for service, var in SERVICE_PORTS.items()},
    }
    (group_vars / "zz_test_hosts.yml").write_text(
        "---\n# Written by tests/integration/fleet/conftest.py: read after the local environment's files.\n"
        + yaml.safe_dump(overrides, sort_keys=False))


@pytest.fixture(scope="session")
def fleet_hosts(request, tmp_path_factory):
    """FLEET_SIZE test hosts for the whole session; torn down at the end whatever happened."""
    tag = uuid.uuid4().hex[:4]
    base = tmp_path_factory.mktemp("fleet")
    base_dsn = postgres_dsn()
    ledger = PgSchema(base_dsn)
    request.addfinalizer(ledger.drop)
    pg_port = dict(part.split("=", 1) for part in base_dsn.split())["port"]
    env = dict(os.environ)
    env.update({
        "HOMEIQ_TEST_HOSTS_DIR": str(base / "hosts"),
        # Names of their own, so two sessions on one machine never share a namespace or a project.
        "HOMEIQ_TEST_HOSTS_PREFIX": f"hq{tag}h",
        "HOMEIQ_TEST_HOSTS_PROJECT": f"homeiq-{tag}-h",
        "HOMEIQ_TEST_HOSTS_PYTHON": str(REPO / ".venv" / "bin" / "python"),
        # The shared ledger's port, reached from inside each host on its own 127.0.0.1.
        "HOMEIQ_TEST_HOSTS_BRIDGE_PORTS": pg_port,
        "LC_ALL": "C.UTF-8",
    })
    fleet = Fleet(dir=base / "hosts", inventory=base / "hosts" / "inventory" / "hosts.yml", env=env, hosts=[],
                  ledger=ledger)
    # Registered before `up`, so a set-up that fails half-way is removed too.
    request.addfinalizer(lambda: fleet.script("down", check=False))
    fleet.script("up", str(FLEET_SIZE))
    inventory = yaml.safe_load(fleet.inventory.read_text())
    for name, hv in inventory["homeiq"]["hosts"].items():
        fleet.hosts.append(FleetHost(name=name, namespace=hv["test_host_namespace"], address=hv["ansible_host"],
                                     project=hv["deploy_project_name"], env_file=hv["test_host_env_file"],
                                     ports=hv["homeiq_ports"]))
    write_fleet_group_vars(fleet.inventory.parent, ledger.dsn)
    return fleet


@pytest.fixture
def fleet(fleet_hosts):
    """The session's test hosts; any host whose sshd a test stopped is started again afterwards."""
    yield fleet_hosts
    for host in fleet_hosts.hosts:
        fleet_hosts.script("start-ssh", host.name, check=False)
