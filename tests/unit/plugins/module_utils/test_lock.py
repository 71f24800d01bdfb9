"""The per-project lock: refusal naming the holder, waiting, takeover of dead or stale holders."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _lock

COLLECTIONS = str(Path(_lock.__file__).parents[5])


def test_acquire_and_release(tmp_path):
    lock = _lock.ProjectLock("demo", lock_dir=str(tmp_path), deployment_id="deploy-1")
    with lock:
        holder = json.loads((tmp_path / "demo.lock").read_text())
        assert holder["pid"] == os.getpid() and holder["deployment_id"] == "deploy-1"
        assert holder["host"] == socket.gethostname()
    assert not (tmp_path / "demo.lock").exists()


def test_second_run_is_refused_naming_the_holder(tmp_path):
    with _lock.ProjectLock("demo", lock_dir=str(tmp_path), deployment_id="deploy-first"):
        other = _lock.ProjectLock("demo", lock_dir=str(tmp_path), deployment_id="deploy-second")
        with pytest.raises(_lock.LockHeld) as info:
            other.acquire()
        msg = str(info.value)
        assert "deploy-first" in msg and "pid %d" % os.getpid() in msg and "since" in msg
        assert "token" not in info.value.holder


def test_waits_up_to_lock_timeout(tmp_path):
    first = _lock.ProjectLock("demo", lock_dir=str(tmp_path)).acquire()
    threading.Timer(0.5, first.release).start()
    start = time.monotonic()
    second = _lock.ProjectLock("demo", lock_dir=str(tmp_path), timeout=10, poll=0.1).acquire()
    assert second.held and 0.3 < time.monotonic() - start < 10
    second.release()


def test_wait_gives_up(tmp_path):
    with _lock.ProjectLock("demo", lock_dir=str(tmp_path)):
        with pytest.raises(_lock.LockHeld, match="waited"):
            _lock.ProjectLock("demo", lock_dir=str(tmp_path), timeout=0.3, poll=0.1).acquire()


def test_dead_holder_is_taken_over(tmp_path):
    # a real process takes the lock and is killed, as a deploy killed with SIGKILL would be
    code = ("import sys, time; sys.path.insert(0, %r); "
            "from ansible_collections.homeiq.deploy.plugins.module_utils._lock import ProjectLock; "
            "ProjectLock('demo', lock_dir=%r, deployment_id='deploy-killed').acquire(); print('held', flush=True); time.sleep(60)"
            % (COLLECTIONS, str(tmp_path)))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    proc.kill()
    proc.wait()
    lock = _lock.ProjectLock("demo", lock_dir=str(tmp_path)).acquire()
    assert lock.taken_over["deployment_id"] == "deploy-killed"
    assert "gone" in lock.taken_over["reason"]
    lock.release()


def test_stale_holder_is_taken_over(tmp_path):
    (tmp_path / "demo.lock").write_text(json.dumps({
        "token": "x", "host": "elsewhere", "pid": 1, "boot_id": "b", "user": "ops",
        "since": "2020-01-01T00:00:00+00:00", "deployment_id": "deploy-old"}))
    with pytest.raises(_lock.LockHeld):
        _lock.ProjectLock("demo", lock_dir=str(tmp_path)).acquire()   # other host, no staleness limit
    lock = _lock.ProjectLock("demo", lock_dir=str(tmp_path), stale_after=60).acquire()
    assert "older than lock_stale_after" in lock.taken_over["reason"]
    lock.release()


def test_corrupt_lock_file_is_replaced(tmp_path):
    (tmp_path / "demo.lock").write_text("{not json")
    lock = _lock.ProjectLock("demo", lock_dir=str(tmp_path)).acquire()
    assert lock.taken_over == {"reason": "the lock file was unreadable"}
    lock.release()


def test_release_leaves_a_successor_alone(tmp_path):
    first = _lock.ProjectLock("demo", lock_dir=str(tmp_path)).acquire()
    (tmp_path / "demo.lock").unlink()
    second = _lock.ProjectLock("demo", lock_dir=str(tmp_path)).acquire()
    first.release()
    assert json.loads((tmp_path / "demo.lock").read_text())["token"] == second.token
    second.release()


def test_only_one_of_many_wins(tmp_path):
    wins = []

    def attempt():
        lock = _lock.ProjectLock("demo", lock_dir=str(tmp_path))
        if lock.try_acquire() is None:
            wins.append(lock)

    threads = [threading.Thread(target=attempt) for dummy in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


@pytest.mark.parametrize("name", ["", "../etc", "a b", "-x"])
def test_rejects_unsafe_project_names(tmp_path, name):
    with pytest.raises(ValueError):
        _lock.ProjectLock(name, lock_dir=str(tmp_path))
