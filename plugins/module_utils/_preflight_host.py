# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the preflight checks ask of the host: engine, Compose, disk, sockets, network, commands.

Private to the homeiq.deploy collection: not a public API, it may change without notice.

The engine is reached with the Docker SDK; listening sockets are read from /proc/net/{tcp,udp}
(and their owners from /proc/<pid>/fd); nothing here changes the host.
"""
from __future__ import annotations

import grp
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import threading
import time
from urllib.parse import urlsplit

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


def short_error(exc):
    """A one-line description of an exception, without the nested wrappers of requests/urllib3."""
    seen = set()
    cur = exc
    best = None
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and (cur.strerror or cur.errno):
            best = cur.strerror or os.strerror(cur.errno)
        for arg in getattr(cur, "args", ()):
            if isinstance(arg, OSError) and (arg.strerror or arg.errno):
                best = best or arg.strerror or os.strerror(arg.errno)
            if isinstance(arg, tuple):
                for sub in arg:
                    if isinstance(sub, OSError) and (sub.strerror or sub.errno):
                        best = best or sub.strerror or os.strerror(sub.errno)
        cur = cur.__cause__ or cur.__context__
    if best:
        return best
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return text[:300]


def docker_host_of(docker_host):
    return docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def _user_description():
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    groups = []
    for gid in os.getgroups():
        try:
            groups.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            groups.append(str(gid))
    return name, uid, groups


def _owner(st):
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return user, group


def check_engine_access(docker_host=None, timeout=5.0):
    """(ok, why): can the user running the checks open the engine's socket?"""
    host = docker_host_of(docker_host)
    name, uid, groups = _user_description()
    who = f"user {name} (uid {uid})"
    if host.startswith("unix://"):
        path = host[len("unix://"):]
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False, f"no engine socket at {path}: the engine is not running (start dockerd) or docker_host is wrong"
        except PermissionError:
            return False, f"{who} cannot reach {path}: a parent directory is not accessible"
        if not stat.S_ISSOCK(st.st_mode):
            return False, f"{path} is not a socket: docker_host is wrong"
        owner, group = _owner(st)
        mode = oct(stat.S_IMODE(st.st_mode))[2:]
        denied = (f"{who}, groups {', '.join(groups) or 'none'}, cannot open {path} (owner {owner}:{group}, mode {mode}): "
                  f"add the user to group '{group}' (then log in again) or run with become")
        if not os.access(path, os.R_OK | os.W_OK):
            return False, denied
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except PermissionError:
            return False, denied
        except ConnectionRefusedError:
            return False, f"{path} exists but nothing answers on it: dockerd is not running"
        except OSError as exc:
            return False, f"{who} cannot connect to {path}: {short_error(exc)}"
        finally:
            sock.close()
        return True, f"{who} can open {path}"
    if host.startswith("tcp://"):
        parts = urlsplit(host)
        port = parts.port or 2375
        try:
            conn = socket.create_connection((parts.hostname, port), timeout=timeout)
            conn.close()
        except OSError as exc:
            return False, f"{who} cannot connect to {parts.hostname}:{port}: {short_error(exc)}"
        return True, f"{who} can connect to {parts.hostname}:{port}"
    return True, f"{host}: access is decided by the engine check (no local socket to inspect)"


class Engine:
    """The Docker engine through the Docker SDK; one client, used by every check."""

    def __init__(self, docker_host=None, timeout=10):
        self.host = docker_host_of(docker_host)
        self.timeout = timeout
        self._client = None
        self.error = None
        self.version = None
        self.info = None

    def connect(self):
        if self._client is not None or self.error:
            return self._client
        try:
            import docker  # pylint: disable=import-outside-toplevel
        except ImportError:
            self.error = "the Python docker SDK is not installed for this interpreter: pip install docker"
            return None
        try:
            client = docker.DockerClient(base_url=self.host, timeout=self.timeout)
            self.version = client.version()
            self.info = client.info()
        except Exception as exc:  # the SDK raises many kinds; all mean no answer
            self.error = f"no answer from the engine at {self.host}: {short_error(exc)}"
            return None
        self._client = client
        return client

    @property
    def root_dir(self):
        return (self.info or {}).get("DockerRootDir")

    def containers(self):
        client = self.connect()
        if client is None:
            return None
        return client.api.containers(all=False)

    def is_local(self):
        return self.host.startswith("unix://")

    def close(self):
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # pragma: no cover - closing never matters
                pass


_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text):
    m = _VERSION.search(str(text or ""))
    if not m:
        return None
    return tuple(int(x or 0) for x in m.groups())


# --- disk -----------------------------------------------------------------------------------

GB = 1000 ** 3


def free_bytes(path):
    """(free bytes for an unprivileged writer, device id, mount-ish path checked)."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    st = os.statvfs(probe)
    return st.f_bavail * st.f_frsize, os.stat(probe).st_dev, probe


def fmt_gb(n):
    return f"{n / GB:.1f} GB" if n >= GB else f"{n / 1000 ** 2:.0f} MB"


# --- sockets --------------------------------------------------------------------------------

_TCP_LISTEN = "0A"
_UDP_UNCONN = "07"


def _decode_addr(hexaddr):
    ip_hex, port_hex = hexaddr.split(":")
    port = int(port_hex, 16)
    if len(ip_hex) == 8:
        ip = socket.inet_ntop(socket.AF_INET, bytes.fromhex(ip_hex)[::-1])
    else:
        raw = bytes.fromhex(ip_hex)
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
        ip = socket.inet_ntop(socket.AF_INET6, raw)
        if ip.startswith("::ffff:") and "." in ip:
            ip = ip[len("::ffff:"):]
    return ip, port


def parse_proc_net(text, proto):
    """[(proto, ip, port, inode)] of the listening (tcp) or bound (udp) sockets in a /proc/net table."""
    out = []
    want = _TCP_LISTEN if proto == "tcp" else _UDP_UNCONN
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != want:
            continue
        ip, port = _decode_addr(fields[1])
        out.append((proto, ip, port, int(fields[9])))
    return out


def read_listeners(proc_root="/proc"):
    out = []
    for table, proto in (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp")):
        try:
            with open(os.path.join(proc_root, "net", table), encoding="ascii") as fh:
                out.extend(parse_proc_net(fh.read(), proto))
        except OSError:
            continue
    return out


def socket_owners(inodes, proc_root="/proc"):
    """{inode: [(pid, command name)]} for the given socket inodes, from /proc/<pid>/fd."""
    wanted = {f"socket:[{i}]": i for i in inodes}
    found = {}
    if not wanted:
        return found
    try:
        pids = [p for p in os.listdir(proc_root) if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        fd_dir = os.path.join(proc_root, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target in wanted:
                try:
                    with open(os.path.join(proc_root, pid, "comm"), encoding="utf-8", errors="replace") as fh:
                        comm = fh.read().strip()
                except OSError:
                    comm = "?"
                entry = (int(pid), comm)
                lst = found.setdefault(wanted[target], [])
                if entry not in lst:
                    lst.append(entry)
    return found


def _norm_ip(ip):
    ip = (ip or "").strip("[]")
    if ip in ("", "0.0.0.0", "*"):
        return "any4"
    if ip == "::":
        return "any6"
    return ip


def addresses_overlap(a, b):
    """Whether a bind on address a conflicts with a bind on address b (same port)."""
    a, b = _norm_ip(a), _norm_ip(b)
    if a == b:
        return True
    if "any6" in (a, b):
        return True  # a dual-stack wildcard covers every address
    if a == "any4":
        return ":" not in b
    if b == "any4":
        return ":" not in a
    return False


def container_port_holders(containers, port, proto, ip):
    """[(container name, compose project or None)] of running containers publishing port."""
    holders = []
    for c in containers or []:
        for p in c.get("Ports") or []:
            if p.get("PublicPort") != port or (p.get("Type") or "tcp") != proto:
                continue
            if not addresses_overlap(p.get("IP") or "", ip):
                continue
            name = ((c.get("Names") or ["?"])[0]).lstrip("/")
            project = (c.get("Labels") or {}).get("com.docker.compose.project")
            entry = (name, project)
            if entry not in holders:
                holders.append(entry)
    return holders


# --- network --------------------------------------------------------------------------------

def _with_timeout(fn, timeout):
    """Runs fn in a daemon thread: (result, exception, timed_out)."""
    box = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: B036 - reported to the caller
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        return None, None, True
    return box.get("result"), box.get("error"), False


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "postgres": 5432, "postgresql": 5432,
                  "mqtt": 1883, "mqtts": 8883, "redis": 6379}


def parse_endpoint(text):
    """(host, port) from 'host:port', '[v6]:port' or a URL; raises ValueError."""
    text = str(text).strip()
    if "://" in text:
        parts = urlsplit(text)
        host = parts.hostname
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    elif text.startswith("["):
        close = text.find("]")
        host = text[1:close]
        port = text[close + 2:] if text[close + 1:close + 2] == ":" else None
    else:
        host, _sep, port = text.rpartition(":")
        if not host:
            host, port = port, None
    if not host or not port:
        raise ValueError(f"{text!r} is not host:port or a URL with a port")
    port = int(port)
    if not 0 < port < 65536:
        raise ValueError(f"{text!r}: port out of range")
    return host, port


def probe_endpoint(host, port, timeout):
    """(ok, why) after resolving host and opening a TCP connection to it, within timeout each."""
    started = time.monotonic()
    infos, err, timed_out = _with_timeout(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    if timed_out:
        return False, f"{host}: name resolution took longer than {timeout:g}s"
    if err is not None:
        return False, f"{host} does not resolve ({short_error(err)})"
    last = None
    for family, socktype, proto, _canon, addr in infos:
        sock = socket.socket(family, socktype, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(addr)
            elapsed = (time.monotonic() - started) * 1000
            return True, f"{host}:{port} accepts connections ({elapsed:.0f} ms)"
        except socket.timeout:
            last = f"no answer within {timeout:g}s"
        except OSError as exc:
            last = short_error(exc).lower()
        finally:
            sock.close()
    return False, f"{host}:{port} does not accept connections ({last})"


# --- commands -------------------------------------------------------------------------------

def run_gate(command, cwd, timeout, env=None, tail_lines=20):
    """(exit status or None when it timed out / could not start, seconds, last lines of output).

    The command runs in its own process group, which is killed as a whole on timeout.
    """
    started = time.monotonic()
    try:
        proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,  # pylint: disable=ansible-bad-function
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        return None, time.monotonic() - started, [f"could not start: {short_error(exc)}"]
    try:
        out, _err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        out, _err = proc.communicate()
        lines = (out or b"").decode("utf-8", "replace").splitlines()[-tail_lines:]
        return None, time.monotonic() - started, lines + [f"(stopped after {timeout}s)"]
    lines = (out or b"").decode("utf-8", "replace").splitlines()[-tail_lines:]
    return proc.returncode, time.monotonic() - started, lines
