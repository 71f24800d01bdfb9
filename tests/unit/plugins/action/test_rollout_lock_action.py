"""The controller side of rollout_lock: who this run is, and whether a holder's run has ended."""
from __future__ import annotations

import os
import socket
import subprocess

from ansible_collections.homeiq.deploy.plugins.action.rollout_lock import gone, process_start, this_run


def ended_pid():
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_this_run_is_the_parent_process():
    me = this_run()
    assert me["controller"] == socket.gethostname() and me["pid"] == os.getppid()
    assert me["pid_start"] == process_start(os.getppid()) != ""


def test_a_holder_is_gone_only_on_this_controller_and_only_when_its_process_ended():
    me = this_run()
    here = socket.gethostname()
    assert gone({"controller": here, "pid": ended_pid(), "pid_start": "1"}, me)
    # Alive (this test's own process), with its real start time, or without one.
    assert not gone({"controller": here, "pid": os.getpid(), "pid_start": process_start(os.getpid())}, me)
    assert not gone({"controller": here, "pid": os.getpid(), "pid_start": ""}, me)
    # The pid was reused by another process: the start time differs.
    assert gone({"controller": here, "pid": os.getpid(), "pid_start": "1"}, me)
    # Another controller, or an owner that says nothing usable: never judged gone.
    assert not gone({"controller": "ci-runner-7", "pid": ended_pid()}, me)
    assert not gone({"controller": here, "pid": "x"}, me)
    assert not gone(None, me)
    # This run itself.
    assert not gone({"controller": here, "pid": me["pid"]}, me)


def test_process_start_of_no_process_is_empty():
    assert process_start(ended_pid()) == ""
