# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: the per-project deployment lock.

A lock file records who holds it (host, pid, user, deployment id, since when). Taking and
releasing happen under a short flock on a guard file, so two runs can never both win. A lock
whose holder process is gone (same host and boot) or that is older than `stale_after` seconds
is taken over, and the caller is told whose lock it replaced: a killed run never strands it.
"""
from __future__ import annotations

import errno
import fcntl
import getpass
import json
import os
import re
import socket
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone


class LockHeld(Exception):
    """Another run holds the lock; `holder` says who and since when."""

    def __init__(self, holder, waited):
        self.holder = holder
        self.waited = waited
        since = holder.get("since", "?")
        who = "%s@%s pid %s" % (holder.get("user", "?"), holder.get("host", "?"), holder.get("pid", "?"))
        what = holder.get("deployment_id") or "a deployment"
        msg = f"project is locked by {what} ({who}) since {since}"
        if waited:
            msg += f"; waited {waited:.0f} s"
        super().__init__(msg + ": wait for it to finish, raise lock_timeout, or remove the lock file if that run is gone")


def default_lock_dir():
    """/run/lock/homeiq for root (cleared at boot like the processes it names), else per user."""
    if os.geteuid() == 0:
        return "/run/lock/homeiq"
    base = os.environ.get("XDG_RUNTIME_DIR") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "homeiq", "locks")


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (TypeError, ValueError):
        return False
    try:
        with open(f"/proc/{int(pid)}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"   # a zombie holds nothing
    except (OSError, IndexError):
        return True


def _now():
    return datetime.now(timezone.utc)


def _age_seconds(holder):
    try:
        since = datetime.fromisoformat(holder["since"])
    except (KeyError, TypeError, ValueError):
        return float("inf")
    return (_now() - since).total_seconds()


def holder_gone(holder, stale_after=None):
    """Why a recorded holder no longer counts ('' while it still does)."""
    if stale_after is not None and _age_seconds(holder) > stale_after:
        return f"older than lock_stale_after ({stale_after} s)"
    if holder.get("host") == socket.gethostname() and holder.get("boot_id") == _boot_id():
        if not _pid_alive(holder.get("pid")):
            return "its process %s is gone" % holder.get("pid")
    elif holder.get("host") == socket.gethostname() and holder.get("boot_id") != _boot_id():
        return "the host rebooted since"
    return ""


class ProjectLock:
    def __init__(self, project, lock_dir=None, timeout=0, stale_after=None, deployment_id=None, poll=0.5):
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", project or ""):
            raise ValueError(f"invalid project name for a lock: {project!r}")
        self.project = project
        self.lock_dir = lock_dir or default_lock_dir()
        self.path = os.path.join(self.lock_dir, f"{project}.lock")
        self.guard = os.path.join(self.lock_dir, f".{project}.guard")
        self.timeout = timeout or 0
        self.stale_after = stale_after
        self.deployment_id = deployment_id
        self.poll = poll
        self.token = uuid.uuid4().hex
        self.taken_over = None
        self.held = False

    @contextmanager
    def _guarded(self):
        os.makedirs(self.lock_dir, mode=0o755, exist_ok=True)
        fd = os.open(self.guard, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def read(self):
        try:
            with open(self.path) as fh:
                return json.load(fh)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise
        except ValueError:
            return {"corrupt": True, "since": "unknown"}

    def _write(self):
        me = {
            "token": self.token, "host": socket.gethostname(), "pid": os.getpid(), "boot_id": _boot_id(),
            "user": getpass.getuser(), "since": _now().isoformat(timespec="seconds"),
            "deployment_id": self.deployment_id, "project": self.project,
        }
        tmp = f"{self.path}.{self.token}.tmp"
        with open(tmp, "w") as fh:
            json.dump(me, fh)
        os.replace(tmp, self.path)

    def try_acquire(self):
        """One attempt; returns None when taken, else the current holder."""
        with self._guarded():
            holder = self.read()
            if holder is not None and not holder.get("corrupt"):
                why = holder_gone(holder, self.stale_after)
                if not why:
                    return holder
                self.taken_over = dict(holder, reason=why)
                self.taken_over.pop("token", None)
            elif holder is not None:
                self.taken_over = {"reason": "the lock file was unreadable"}
            self._write()
            self.held = True
            return None

    def acquire(self):
        start = time.monotonic()
        while True:
            holder = self.try_acquire()
            if holder is None:
                return self
            waited = time.monotonic() - start
            if waited >= self.timeout:
                holder = {k: v for k, v in holder.items() if k != "token"}
                raise LockHeld(holder, waited if self.timeout else 0)
            time.sleep(min(self.poll, max(self.timeout - waited, 0.05)))

    def release(self):
        if not self.held:
            return
        with self._guarded():
            holder = self.read()
            if holder and holder.get("token") == self.token:
                os.unlink(self.path)
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
