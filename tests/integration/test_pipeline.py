"""deploy.yml and rollback.yml end to end on the real engine: automatic rollback, failures, manual rollback."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from tests.conftest import REPO, ansible_env

DEPLOY = REPO / "deploy.yml"
ROLLBACK = REPO / "rollback.yml"


def pipeline_vars(project, release, **kw):
    """deploy.yml's variables for a throw-away project: its own ports, ledger, lock and report folders."""
    extra = {
        "deploy_project_src": str(project.src), "deploy_project_name": project.name,
        "deploy_env_files": [project.env_file(release)], "deploy_lock_dir": str(project.lock_dir),
        "deploy_wait_timeout": 30, "ledger_path": str(project.tmp / "ledger.sqlite3"),
        "ledger_project": project.name, "ledger_environment": "test",
        "pipeline_logs_dir": str(project.tmp / "reports"),
        "pipeline_preflight": False, "pipeline_verify": False, "pipeline_notify": False,
        "rollback_verify": False, "rollback_notify": False,
    }
    extra.update(kw)
    return extra


def ledger_rows(project):
    with sqlite3.connect(project.tmp / "ledger.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return {r["deployment_id"]: dict(r) for r in db.execute("SELECT * FROM deployments")}


def ledger_info(playbook, project, query, **kw):
    from tests.integration.conftest import write_play
    play = write_play(project.tmp, [{"name": "read", "homeiq.deploy.deploy_ledger_info": dict(
        path=str(project.tmp / "ledger.sqlite3"), query=query, **kw), "register": "r"}])
    run = playbook(play)
    assert run.rc == 0, run.output
    return run.task("read")["result"]


def images_running(project):
    return {s: c[1] for s, c in project.containers().items()}


def test_unhealthy_release_is_rolled_back_to_the_exact_images(project, playbook):
    run = playbook(DEPLOY, extra_vars=pipeline_vars(project, "a"))
    assert run.rc == 0, run.output
    images_a = images_running(project)
    first_id = run.task("Name this deployment")["result"]["ansible_facts"]["pipeline_id"]

    run = playbook(DEPLOY, extra_vars=pipeline_vars(project, "unhealthy", deploy_wait_timeout=15))
    assert run.rc != 0
    failed_id = run.task("Name this deployment")["result"]["ansible_facts"]["pipeline_id"]
    msg = run.task("Stop here, the deployment failed")["result"]["msg"]
    assert f"Deployment {failed_id} failed at deploy" in msg
    assert "failing checks: api, worker" in msg or "failing checks: worker" in msg
    assert "rolled back to the previous images" in msg
    # A's exact images run again, every service running and healthy
    assert images_running(project) == images_a
    assert all(c[2] == "running" for c in project.containers().values())
    # the failing services' logs were saved and named
    logs = run.task("Keep the log paths")["result"]["ansible_facts"]["pipeline_log_files"]
    assert logs and all(Path(p).is_file() for p in logs)
    assert str(project.tmp / "reports") in msg
    # ledger: the deployment rolled back, the rollback recorded against it, recovery measured
    info = ledger_info(playbook, project, "list", limit=10)
    by_id = {d["deployment_id"]: d for d in info["deployments"]}
    assert by_id[first_id]["status"] == "success"
    assert by_id[failed_id]["status"] == "rolled_back"
    rollback = [d for d in info["deployments"] if d["kind"] == "rollback"]
    assert len(rollback) == 1 and rollback[0]["rollback_of"] == failed_id and rollback[0]["status"] == "success"
    assert rollback[0]["images"] == images_a
    metrics = ledger_info(playbook, project, "metrics")["metrics"]
    assert metrics["rollbacks"] == 1 and metrics["failed"] == 1 and metrics["successful"] == 1
    assert metrics["mttr_s"] is not None and metrics["mttr_s"] > 0 and metrics["unrecovered"] == 0
    stats = run.task("Publish the outcome")["result"]["ansible_stats"]["data"]["homeiq_deployments"]["localhost"]
    assert stats["status"] == "rolled_back" and stats["deployment_id"] == failed_id
    assert stats["rollback"]["succeeded"] is True


def test_failed_build_touches_nothing_and_needs_no_rollback(project, playbook):
    assert playbook(DEPLOY, extra_vars=pipeline_vars(project, "a")).rc == 0
    before = project.containers()
    run = playbook(DEPLOY, extra_vars=pipeline_vars(project, "buildfail"))
    assert run.rc != 0
    msg = run.task("Stop here, the deployment failed")["result"]["msg"]
    assert "build failed" in msg and "nothing was changed, the previous release keeps running" in msg
    assert project.containers() == before
    failed_id = run.task("Name this deployment")["result"]["ansible_facts"]["pipeline_id"]
    rows = ledger_rows(project)
    assert rows[failed_id]["status"] == "failed"
    assert not [r for r in rows.values() if r["kind"] == "rollback"]


def test_first_deployment_failing_has_nothing_to_go_back_to(project, playbook):
    run = playbook(DEPLOY, extra_vars=pipeline_vars(project, "unhealthy", deploy_wait_timeout=10))
    assert run.rc != 0
    msg = run.task("Stop here, the deployment failed")["result"]["msg"]
    assert "no rollback (no previous deployment to go back to)" in msg


class DockerProxy:
    """A unix socket that forwards to the real engine: stopping it is an engine outage for one test only."""

    def __init__(self, path, target="/var/run/docker.sock"):
        self.path, self.target = str(path), target
        self.conns = []
        self.server = None

    def start(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(self.path)
        self.server.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        server = self.server
        while True:
            try:
                client, dummy = server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.server.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
        self.conns = []
        if os.path.exists(self.path):
            os.unlink(self.path)


def start_playbook(tmp_path, playbook_path, extra, env):
    vars_file = Path(tmp_path) / f"vars-{time.time_ns()}.json"
    vars_file.write_text(json.dumps(extra))
    return subprocess.Popen([str(Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "ansible-playbook"),
                             str(playbook_path), "-i", str(REPO / "inventories" / "local"), "-e", f"@{vars_file}"],
                            cwd=REPO, env=ansible_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def wait_for(predicate, timeout=120, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def test_engine_lost_mid_deploy(project, playbook, tmp_path):
    proxy = DockerProxy(tmp_path / "docker.sock")
    proxy.start()
    env = {"DOCKER_HOST": f"unix://{proxy.path}"}
    try:
        assert playbook(DEPLOY, extra_vars=pipeline_vars(project, "a"), env=env).rc == 0
        before = project.containers()
        lock = project.lock_dir / f"{project.name}.lock"
        proc = start_playbook(tmp_path, DEPLOY, pipeline_vars(project, "b"), env)
        assert wait_for(lock.exists), "the deployment never took its lock"
        time.sleep(0.5)
        proxy.stop()                                   # the engine is gone for this deployment
        out, dummy = proc.communicate(timeout=300)
        assert proc.returncode != 0
        assert "Traceback" not in out
        assert "Cannot connect to the Docker daemon" in out or "not reachable" in out or "failed" in out
        assert not lock.exists(), "the lock must be released when the engine goes away"
        rows = ledger_rows(project)
        failed = [r for r in rows.values() if r["status"] == "failed"]
        assert len(failed) == 1
        assert project.containers() == before           # as seen through the real socket

        proxy.start()                                   # the engine is back: the next deploy works
        run = playbook(DEPLOY, extra_vars=pipeline_vars(project, "b"), env=env)
        assert run.rc == 0, run.output
        assert images_running(project) != {s: c[1] for s, c in before.items()}
    finally:
        proxy.stop()


def test_killed_deploy_is_reported_and_its_lock_taken_over(project, playbook, tmp_path):
    assert playbook(DEPLOY, extra_vars=pipeline_vars(project, "a")).rc == 0
    lock = project.lock_dir / f"{project.name}.lock"
    proc = start_playbook(tmp_path, DEPLOY, pipeline_vars(project, "b"), {})
    assert wait_for(lock.exists), "the deployment never took its lock"
    holder = json.loads(lock.read_text())
    interrupted = holder["deployment_id"]
    # ansible-playbook and the module process it started (on its own session, as on a remote host)
    os.killpg(proc.pid, signal.SIGKILL)
    os.killpg(os.getpgid(holder["pid"]), signal.SIGKILL)
    proc.wait()
    assert wait_for(lambda: not Path(f"/proc/{holder['pid']}").exists() or
                    Path(f"/proc/{holder['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", timeout=10)
    assert lock.exists()                                # SIGKILL leaves it behind
    run = playbook(DEPLOY, extra_vars=pipeline_vars(project, "b"))
    assert run.rc == 0, run.output
    deployed = run.task("Build and deploy with compose_deploy")["result"]
    assert deployed.get("lock_taken_over", {}).get("deployment_id") == interrupted, deployed
    assert f"took over the lock of an interrupted run: {interrupted}" in run.output
    assert ledger_rows(project)[interrupted]["status"] == "in_progress"   # the ledger still shows it unfinished
    assert not lock.exists()


def test_manual_rollbacks_and_their_errors(project, playbook):
    run = playbook(DEPLOY, extra_vars=pipeline_vars(project, "a"))
    assert run.rc == 0, run.output
    id_a = run.task("Name this deployment")["result"]["ansible_facts"]["pipeline_id"]
    images_a = images_running(project)
    run = playbook(DEPLOY, extra_vars=pipeline_vars(project, "b"))
    assert run.rc == 0, run.output
    id_b = run.task("Name this deployment")["result"]["ansible_facts"]["pipeline_id"]
    images_b = images_running(project)
    assert images_a != images_b

    # errors first: each a clear line, nothing stopped
    before = project.containers()
    for extra, expected in (
        ({"rollback_to": "deploy-20200101-000000-zzzz"}, "deploy-20200101-000000-zzzz is not in the ledger"),
        ({"rollback_tag": "no-such-tag"}, "cannot restore tag no-such-tag: no image"),
        ({"rollback_images": {"api": "sha256:" + "e" * 64, "worker": images_a["worker"]}}, "the engine has no image api"),
        ({}, "nothing to roll back to"),
    ):
        run = playbook(ROLLBACK, extra_vars=pipeline_vars(project, "b", **extra))
        assert run.rc != 0
        assert expected in run.output, run.output[-3000:]
        assert "Traceback" not in run.output
        failed = [r for r in run.results if r["status"] == "failed"]
        assert failed and "\n" not in failed[0]["result"]["msg"], failed
        assert project.containers() == before

    # rollback_to: previous -> A, recorded against B
    run = playbook(ROLLBACK, extra_vars=pipeline_vars(project, "b", rollback_to="previous"))
    assert run.rc == 0, run.output
    assert images_running(project) == images_a
    rows = ledger_rows(project)
    assert rows[id_b]["status"] == "rolled_back"
    # the refused rollbacks left no record; this one undoes the newest deployment, B
    assert [r["rollback_of"] for r in rows.values() if r["kind"] == "rollback"] == [id_b]

    # rollback_to: <id> -> B's exact images; rollback_tag: A's deployment id -> A again
    run = playbook(ROLLBACK, extra_vars=pipeline_vars(project, "b", rollback_to=id_b))
    assert run.rc == 0, run.output
    assert images_running(project) == images_b
    run = playbook(ROLLBACK, extra_vars=pipeline_vars(project, "b", rollback_tag=id_a))
    assert run.rc == 0, run.output
    assert images_running(project) == images_a


def test_rollback_to_a_commit_rebuilds_it(project, playbook, tmp_path):
    src = tmp_path / "checkout"
    shutil.copytree(project.src, src)
    git = ["git", "-C", str(src), "-c", "user.name=ci", "-c", "user.email=ci@example.invalid"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "release a"], check=True)
    commit_a = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    compose = src / "compose.yaml"
    compose.write_text(compose.read_text().replace("${HOMEIQ_RELEASE:-a}", "${HOMEIQ_RELEASE:-b}"))
    subprocess.run(git + ["commit", "-qam", "release b"], check=True)
    project.src = src
    env_file = tmp_path / "ports.env"
    env_file.write_text(f"CDTEST_API_PORT={project.port}\n")
    extra = pipeline_vars(project, "a", deploy_env_files=[str(env_file)])
    run = playbook(DEPLOY, extra_vars=extra)
    assert run.rc == 0, run.output
    assert run.task("Name this deployment")["result"]["ansible_facts"]["pipeline_release"]["commit"] != commit_a
    images_b = images_running(project)
    run = playbook(ROLLBACK, extra_vars=dict(extra, rollback_commit=commit_a))
    assert run.rc == 0, run.output
    images_now = images_running(project)
    assert images_now != images_b
    api = project.engine.containers.get(project.containers()["api"][0])
    assert api.exec_run("cat /srv/release").output.decode().strip() == "a"
