"""Fixtures for integration tests against the real Docker engine."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker
import pytest
import yaml

HERE = Path(__file__).parent
COMPOSE_PROJECT = HERE / "compose" / "project"


def require_tool(name):
    """The path of a command-line tool a test calls. A missing tool fails the test (it never skips),
    naming the make target that installs it (scripts/ensure-tools lists every tool)."""
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `make test-services` (scripts/ensure-tools installs the tools "
                    "the tests call)", pytrace=False)
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A real HTTP server on loopback that keeps every JSON payload posted to it, by path."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.request_queue_size = 64
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def payloads(self, path):
        return [p for pth, p in self.received if pth == path]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="session")
def engine():
    client = docker.from_env()
    client.ping()
    return client


class ComposeProject:
    """One throw-away compose project: unique name, own port, own lock and state folders."""

    def __init__(self, engine, tmp_path, src=COMPOSE_PROJECT, port_var="CDTEST_API_PORT"):
        self.engine = engine
        self.src = Path(src)
        self.name = "t" + uuid.uuid4().hex[:10]
        self.port = free_port()
        self.tmp = tmp_path
        self.port_var = port_var
        self.lock_dir = tmp_path / "locks"
        self.state_dir = tmp_path / "state"

    def env_file(self, release="a", **extra):
        path = self.tmp / f"release-{release}.env"
        lines = [f"HOMEIQ_RELEASE={release}", f"{self.port_var}={self.port}"]
        lines += [f"{k}={v}" for k, v in extra.items()]
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    def args(self, release="a", **kw):
        args = {"project_src": str(self.src), "project_name": self.name, "env_files": [self.env_file(release)],
                "lock_dir": str(self.lock_dir), "state_dir": str(self.state_dir), "wait_timeout": 60}
        args.update(kw)
        return args

    def containers(self):
        """service -> (container id, image id) of the project's containers as the engine has them."""
        found = {}
        for c in self.engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={self.name}"}):
            found[c.labels["com.docker.compose.service"]] = (c.id, c.attrs["Image"], c.status, c.labels)
        return found

    def images(self):
        return sorted((t, i.id) for i in self.engine.images.list() for t in i.tags if t.startswith(self.name + "-"))

    def cleanup(self):
        subprocess.run(["docker", "compose", "--project-directory", str(self.src), "-p", self.name, "down",
                        "--remove-orphans", "--timeout", "1"], capture_output=True, check=False)
        for ref, dummy in self.images():
            try:
                self.engine.images.remove(ref, force=True)
            except docker.errors.APIError:
                pass


@pytest.fixture
def project(engine, tmp_path):
    proj = ComposeProject(engine, tmp_path)
    yield proj
    proj.cleanup()


def write_play(tmp_path, tasks, name="play"):
    """A playbook for localhost that runs the given tasks."""
    path = Path(tmp_path) / f"{name}-{uuid.uuid4().hex[:6]}.yml"
    path.write_text(yaml.safe_dump([{"name": name, "hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                                   sort_keys=False))
    return path


@pytest.fixture
def run_module(playbook, tmp_path):
    """Runs compose_deploy with `args` in a real ansible-playbook process; returns (run, task result)."""
    def _run(args, check=False, diff=False, **kw):
        play = write_play(tmp_path, [{"name": "compose_deploy", "homeiq.deploy.compose_deploy": args,
                                      "register": "result"}])
        run = playbook(play, check=check, diff=diff, **kw)
        return run, run.task("compose_deploy")
    return _run
