"""compose_deploy with a stack of domain projects (HomeIQ's shape) against the real engine.

The fixture under compose/stack is a checkout root: domains/<d>/compose.yml reach the root `.env` as
`../../.env`, bind-mount `../../infrastructure/...` and build with `context: ../..`; the core domain creates
the network and the others join it as external. Every run uses its own project names, network, container
names and port, from an env file given after the root `.env`.
"""
from __future__ import annotations

import json
import subprocess
import threading
import uuid

import docker
import pytest

from tests.integration.conftest import HERE, free_port

STACK_SRC = HERE / "compose" / "stack"
DOMAINS = ("core", "middle", "edge")


class StackFixture:
    """One throw-away stack: three compose projects, a network and their images, all named after `id`."""

    def __init__(self, engine, tmp_path):
        self.engine = engine
        self.tmp = tmp_path
        self.id = "ts" + uuid.uuid4().hex[:8]
        self.names = {d: f"{self.id}-{d}" for d in DOMAINS}
        self.network = f"{self.id}-net"
        self.port = free_port()
        self.lock_dir = tmp_path / "locks"
        self.state_dir = tmp_path / "state"
        self.env_files = set()

    def env_file(self, release="a", middle=None):
        path = self.tmp / f"run-{release}-{middle or release}.env"
        path.write_text(f"STACKTEST_RELEASE={release}\nSTACKTEST_MIDDLE_RELEASE={middle or release}\n"
                        f"STACKTEST_NETWORK={self.network}\nSTACKTEST_PREFIX={self.id}\nSTACKTEST_CORE_PORT={self.port}\n")
        self.env_files.add(str(path))
        return str(path)

    def entries(self, release="a", middle=None):
        run_env = self.env_file(release, middle)
        return [{"name": self.names[d], "files": [f"domains/{d}/compose.yml"], "env_files": [".env", run_env]}
                for d in DOMAINS]

    def args(self, release="a", middle=None, **kw):
        args = {"project_src": str(STACK_SRC), "projects": self.entries(release, middle), "lock_dir": str(self.lock_dir),
                "state_dir": str(self.state_dir), "wait_timeout": 60}
        args.update(kw)
        return args

    def containers(self, domain):
        """service -> (container id, image id, status) of one domain's project."""
        found = {}
        for c in self.engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={self.names[domain]}"}):
            found[c.labels["com.docker.compose.service"]] = (c.id, c.attrs["Image"], c.status)
        return found

    def all_containers(self):
        return {d: self.containers(d) for d in DOMAINS}

    def images(self, domain):
        return {svc: image for svc, (dummy, image, dummy2) in self.containers(domain).items()}

    def container(self, domain, service):
        return self.engine.containers.get(self.containers(domain)[service][0])

    def cleanup(self):
        env_args = ["--env-file", str(STACK_SRC / ".env")]
        for path in sorted(self.env_files)[:1]:
            env_args += ["--env-file", path]
        for d in reversed(DOMAINS):
            subprocess.run(["docker", "compose", "-p", self.names[d], "-f", f"domains/{d}/compose.yml", *env_args,
                            "down", "--remove-orphans", "--timeout", "1"], cwd=STACK_SRC, capture_output=True, check=False)
            for c in self.engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={self.names[d]}"}):
                c.remove(force=True)
        for net in self.engine.networks.list(names=[self.network]):
            net.remove()
        for image in self.engine.images.list():
            for tag in image.tags:
                if tag.startswith(self.id + "-"):
                    try:
                        self.engine.images.remove(tag, force=True)
                    except docker.errors.APIError:
                        pass


@pytest.fixture
def stack(engine, tmp_path):
    st = StackFixture(engine, tmp_path)
    yield st
    st.cleanup()


class EventLog:
    """The engine's container events as they happen (the engine keeps only the last few hundred for `since`)."""

    def __init__(self, engine, ids_prefix):
        self.seen = []
        self.prefix = ids_prefix
        self.stream = engine.events(decode=True, filters={"type": "container", "event": ["create", "health_status"]})
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for ev in self.stream:
                project = ev.get("Actor", {}).get("Attributes", {}).get("com.docker.compose.project", "")
                if project.startswith(self.prefix):
                    self.seen.append((ev["id"], ev.get("Action") or ev.get("status"), ev["timeNano"]))
        except Exception:  # pylint: disable=broad-except
            pass                                   # the stream was closed

    def first(self):
        self.stream.close()
        self.thread.join(timeout=10)
        found = {}
        for cid, action, when in self.seen:
            found.setdefault((cid, action), when)
        return found


def test_domain_file_paths_resolve_as_compose_f_does(stack, run_module):
    """project_src=<root>, files=[domains/core/compose.yml], env_files=[.env, ...] is `docker compose -f ... up` from <root>."""
    args = {"project_src": str(STACK_SRC), "project_name": stack.names["core"], "files": ["domains/core/compose.yml"],
            "env_files": [".env", stack.env_file()], "lock_dir": str(stack.lock_dir), "state_dir": str(stack.state_dir),
            "wait_timeout": 60}
    run, res = run_module(args, check=True)
    assert res["status"] == "ok" and res["result"]["changed"] is True, run.output
    assert stack.containers("core") == {}
    run, res = run_module(args)
    assert res["status"] == "ok" and res["result"]["changed"] is True, run.output
    api = stack.container("core", "api")
    # the project directory is the file's folder, as with `docker compose -f`: ../.. is the root
    assert api.labels["com.docker.compose.project.working_dir"] == str(STACK_SRC / "domains" / "core")
    assert "STACKTEST_GREETING=from-root-env" in api.attrs["Config"]["Env"]           # env_file: ../../.env
    mounts = {m["Destination"]: m["Source"] for m in api.attrs["Mounts"]}
    assert mounts["/etc/stack.conf"] == str(STACK_SRC / "infrastructure" / "stack.conf")  # ../../infrastructure
    assert api.exec_run(["cat", "/etc/stack.conf"]).output.decode().strip() == "conf-from-infrastructure"
    assert api.exec_run(["cat", "/srv/built.conf"]).output.decode().strip() == "conf-from-infrastructure"  # context ../..
    assert api.name == f"{stack.id}-core-api" and stack.engine.networks.get(stack.network).name == stack.network
    # Compose itself, run from the root with the same flags, resolves the same paths
    plain = subprocess.run(["docker", "compose", "-p", stack.names["core"], "-f", "domains/core/compose.yml",
                            "--env-file", ".env", "--env-file", args["env_files"][1], "config", "--format", "json"],
                           cwd=STACK_SRC, capture_output=True, text=True, check=True)
    svc = json.loads(plain.stdout)["services"]["api"]
    assert svc["build"]["context"] == str(STACK_SRC) and svc["volumes"][0]["source"] == mounts["/etc/stack.conf"]
    first = stack.containers("core")
    run, res = run_module(args, check=True)
    assert res["result"]["changed"] is False, res["result"]["actions"]
    run, res = run_module(args)
    assert res["result"]["changed"] is False, res["result"]["actions"]
    assert stack.containers("core") == first


def test_stack_check_real_check_real(stack, run_module):
    run, res = run_module(stack.args(), check=True)
    r = res["result"]
    assert res["status"] == "ok" and r["changed"] is True, run.output
    assert [p["name"] for p in r["projects"]] == [stack.names[d] for d in DOMAINS]
    assert all(p["changed"] for p in r["projects"])
    assert {(a["project"], a["what"]) for a in r["actions"]} == {(stack.names[d], w) for d in DOMAINS for w in ("build", "create")}
    assert stack.all_containers() == {d: {} for d in DOMAINS} and not stack.engine.networks.list(names=[stack.network])

    log = EventLog(stack.engine, stack.id + "-")
    run, res = run_module(stack.args())
    events = log.first()
    r = res["result"]
    assert res["status"] == "ok" and r["changed"] is True, run.output
    first = stack.all_containers()
    assert {d: set(c) for d, c in first.items()} == {"core": {"api"}, "middle": {"worker"}, "edge": {"web"}}
    assert all(status == "running" for c in first.values() for dummy, dummy2, status in c.values())
    assert r["current_images"] == {stack.names[d]: stack.images(d) for d in DOMAINS}
    assert r["previous_images"] == {stack.names[d]: {} for d in DOMAINS}
    assert sorted((s["project"], s["name"], s["health"]) for s in r["services"]) == sorted(
        [(stack.names["core"], "api", "healthy"), (stack.names["middle"], "worker", "healthy"),
         (stack.names["edge"], "web", "healthy")])
    # in order, each healthy before the next was created
    core, middle, edge = (stack.container(d, s) for d, s in (("core", "api"), ("middle", "worker"), ("edge", "web")))
    assert events[(core.id, "health_status: healthy")] < events[(middle.id, "create")]
    assert events[(middle.id, "health_status: healthy")] < events[(edge.id, "create")]
    assert {n.name for n in stack.engine.networks.list(names=[stack.network])} == {stack.network}
    assert stack.network in edge.attrs["NetworkSettings"]["Networks"]

    run, res = run_module(stack.args(), check=True)
    assert res["result"]["changed"] is False, res["result"]["actions"]
    run, res = run_module(stack.args())
    assert res["status"] == "ok" and res["result"]["changed"] is False, res["result"]["actions"]
    assert stack.all_containers() == first                       # no container recreated


def test_failed_project_stops_the_stack_and_restore_brings_back_the_changed_ones(stack, run_module):
    run, res = run_module(stack.args("a"))
    assert res["status"] == "ok", run.output
    images_a = {d: stack.images(d) for d in DOMAINS}
    edge_before = stack.containers("edge")

    # release b, with the middle project's release failing its healthcheck
    run, res = run_module(stack.args("b", middle="unhealthy", wait_timeout=30))
    assert res["status"] == "failed", run.output
    r = res["result"]
    core, middle, edge = (stack.names[d] for d in DOMAINS)
    assert r["failed_project"] == middle
    assert r["changed_projects"] == [core, middle] and r["stack_changed"] is True
    assert r["not_started"] == [edge]
    assert r["previous_images"] == {core: images_a["core"], middle: images_a["middle"]}
    assert set(r["current_images"]) == {core, middle}
    assert r["current_images"][core] == stack.images("core") != images_a["core"]
    assert r["msg"].startswith(f"stack stopped at project {middle}: `docker compose up` failed")
    assert r["msg"].endswith(f"changed: {core}, {middle}; not started: {edge}") and "\n" not in r["msg"]
    assert "Traceback" not in run.output
    assert stack.containers("edge") == edge_before               # the third project was not touched
    failed_images = {d: stack.images(d) for d in ("core", "middle")}
    assert failed_images["middle"] != images_a["middle"]

    # restore the changed projects from the failure's facts: check, real, check, real
    restore = stack.args("b", middle="unhealthy", state="restored", restore_images=r["previous_images"])
    run, res = run_module(restore, check=True)
    assert res["status"] == "ok" and res["result"]["changed"] is True, run.output
    assert [p["name"] for p in res["result"]["projects"]] == [middle, core]        # reverse order, edge left out
    assert {d: stack.images(d) for d in ("core", "middle")} == failed_images
    run, res = run_module(restore)
    assert res["status"] == "ok" and res["result"]["changed"] is True, run.output
    assert [p["name"] for p in res["result"]["projects"]] == [middle, core]
    assert {d: stack.images(d) for d in DOMAINS} == images_a
    assert all(status == "running" for c in stack.all_containers().values() for dummy, dummy2, status in c.values())
    assert stack.container("middle", "worker").attrs["State"]["Health"]["Status"] == "healthy"
    assert stack.containers("edge") == edge_before
    run, res = run_module(restore, check=True)
    assert res["result"]["changed"] is False, res["result"]["actions"]
    restored = stack.all_containers()
    run, res = run_module(restore)
    assert res["status"] == "ok" and res["result"]["changed"] is False, res["result"]["actions"]
    assert stack.all_containers() == restored


def test_bad_project_in_a_stack_touches_nothing(stack, run_module):
    run, res = run_module(stack.args("a"))
    assert res["status"] == "ok", run.output
    before = stack.all_containers()
    args = stack.args("b")
    args["projects"][2]["files"] = ["domains/edge/missing.yml"]      # the last project is wrong
    run, res = run_module(args)
    assert res["status"] == "failed"
    msg = res["result"]["msg"]
    assert msg.startswith(f"project {stack.names['edge']}: compose file ") and "missing.yml does not exist" in msg, msg
    assert "\n" not in msg and "Traceback" not in run.output
    assert res["result"]["stack_changed"] is False
    assert stack.all_containers() == before                      # the first two were not deployed either


def test_project_directory_is_passed_only_when_given(stack, run_module):
    """project_directory '.' makes the root the project directory, so ../../.env points above it, as with Compose."""
    entries = stack.entries()
    entries[0]["project_directory"] = "."
    run, res = run_module(stack.args(projects=entries))
    assert res["status"] == "failed"
    msg = res["result"]["msg"]
    assert msg.startswith(f"project {stack.names['core']}: env file {STACK_SRC.parents[1]}/.env not found"), msg
    assert "\n" not in msg and res["result"]["stack_changed"] is False
    assert stack.all_containers() == {d: {} for d in DOMAINS}
