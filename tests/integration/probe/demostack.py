"""A throw-away copy of the demo stack (examples/homeiq-demo) for the verification tests:
its own compose project name and its own loopback ports, removed with its images afterwards."""
from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "examples" / "homeiq-demo"
PORT_VARS = {
    "influxdb": "HOMEIQ_INFLUXDB_PORT",
    "websocket-ingestion": "HOMEIQ_WEBSOCKET_INGESTION_PORT",
    "data-api": "HOMEIQ_DATA_API_PORT",
    "admin-api": "HOMEIQ_ADMIN_API_PORT",
    "ai-pattern-service": "HOMEIQ_AI_PATTERN_SERVICE_PORT",
    "ai-automation-service": "HOMEIQ_AI_AUTOMATION_SERVICE_PORT",
    "health-dashboard": "HOMEIQ_HEALTH_DASHBOARD_PORT",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_env():
    """The demo's env file as a dict (tokens the tests send)."""
    out = {}
    for line in (DEMO / "demo.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            k, _sep, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


class DemoProject:
    def __init__(self, prefix="verify"):
        self.name = "%s%s" % (prefix, uuid.uuid4().hex[:8])
        self.ports = {svc: free_port() for svc in PORT_VARS}
        self.release = "a"

    def env(self, release=None):
        env = dict(os.environ)
        env["HOMEIQ_RELEASE"] = release or self.release
        env["HOMEIQ_HEALTHCHECK_INTERVAL"] = "1s"
        for svc, var in PORT_VARS.items():
            env[var] = str(self.ports[svc])
        return env

    def compose(self, *args, release=None, check=True, timeout=900):
        cmd = ["docker", "compose", "-f", str(DEMO / "compose.yaml"), "-p", self.name] + list(args)
        proc = subprocess.run(cmd, env=self.env(release), capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("%s failed:\n%s" % (" ".join(cmd), proc.stderr[-3000:]))
        return proc

    def up(self, *services, release="a", wait=True):
        self.release = release
        args = ["up", "-d", "--build"] + (["--wait", "--wait-timeout", "240"] if wait else []) + list(services)
        return self.compose(*args, release=release)

    def container(self, service):
        return "%s-%s-1" % (self.name, service)

    def url(self, service, path):
        return "http://127.0.0.1:%d%s" % (self.ports[service], path)

    def down(self):
        self.compose("down", "-v", "--rmi", "local", "--remove-orphans", "--timeout", "2", check=False)
