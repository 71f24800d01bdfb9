# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of homeiq.deploy.rollout_lock: who takes the lock, and whether a holder on this
controller is still alive (only the controller can tell; the module may run on any host)."""
from __future__ import annotations

import getpass
import os
import socket

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

MODULE = "homeiq.deploy.rollout_lock"


def process_start(pid):
    """Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat); '' if unknown."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError, ValueError):
        return ""


def this_run():
    """The ansible-playbook process of this run: the parent of the worker running this plugin."""
    pid = os.getppid()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"controller": socket.gethostname(), "pid": pid, "pid_start": process_start(pid), "user": user}


def gone(owner, me):
    """Whether the holder ran on this controller and its process has ended (or the pid was reused)."""
    if not isinstance(owner, dict) or owner.get("controller") != me["controller"]:
        return False
    try:
        pid = int(owner.get("pid"))
    except (TypeError, ValueError):
        return False
    if pid == me["pid"]:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    started = owner.get("pid_start") or ""
    return bool(started) and process_start(pid) != started


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        me = this_run()
        args["owner"] = dict(me, **(args.get("owner") or {}))
        answer = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        holder = answer.get("holder") or {}
        state = args.get("state", "acquired")
        if state == "acquired" and answer.get("acquired") is False and not answer.get("failed") and gone(holder.get("owner"), me):
            answer = self._execute_module(module_name=MODULE, module_args=dict(args, takeover=holder["rollout_id"]),
                                          task_vars=task_vars)
        result.update(answer)
        if result.get("failed"):
            return result
        took_over = result.get("took_over")
        if took_over:
            display.warning(
                "took over the rollout lock of %s from rollout %s (%s), which is over: check the hosts it was deploying"
                % (took_over["scope"], took_over["rollout_id"],
                   "expired at %s" % took_over["expires_at"] if took_over.get("expired") else "its process on this controller has ended"))
        if state == "acquired" and not result.get("acquired"):
            owner = holder.get("owner") or {}
            result["failed"] = True
            result["msg"] = (
                "rollout %s holds the lock of %s since %s (controller %s, pid %s, user %s; it expires at %s): wait for it "
                "to finish, or if that run is over, run again with -e rollout_lock_takeover=%s"
                % (holder.get("rollout_id"), holder.get("scope"), holder.get("acquired_at"), owner.get("controller", "?"),
                   owner.get("pid", "?"), owner.get("user", "?"), holder.get("expires_at"), holder.get("rollout_id")))
        if state == "released" and not result.get("released"):
            display.warning(
                "the rollout lock of %s is held by rollout %s, not %s: left as it is"
                % (holder.get("scope"), holder.get("rollout_id"), args.get("rollout_id")))
        return result
