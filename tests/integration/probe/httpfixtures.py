"""Real HTTP servers on 127.0.0.1 for the health_probe tests: healthy, slow, failing,
redirecting, non-JSON, oversized, token-protected, flaky and hanging endpoints."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = "Bearer s3cr3t-probe-token-7f3a"
HEALTHY_DOC = {"status": "healthy", "service": "data-api", "checks": {"influxdb": "ok", "sqlite": "ok"},
               "version": "2.1.0", "uptime_seconds": 1234}


class Server(ThreadingHTTPServer):
    # the default backlog of 5 stalls concurrent clients for a second per overflow
    request_queue_size = 256
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # clients that stop reading (the probe caps body size, timeouts) reset connections
        pass


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.counters = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = []  # (method, path, headers, body)
        self.in_flight_by_key = {}
        self.max_in_flight_by_key = {}  # ?k=... groups requests of one test


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        def _done(self):
            # counted out before the answer leaves, so a client that sends its next request the
            # moment it has this answer never sees this one as still in flight
            if getattr(self, "_counted", False):
                self._counted = False
                with state.lock:
                    state.in_flight -= 1
                    if self._key:
                        state.in_flight_by_key[self._key] -= 1

        def _send(self, code, body, ctype="application/json", extra=None):
            self._done()
            data = body if isinstance(body, bytes) else (json.dumps(body) if not isinstance(body, str) else body).encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _handle(self):
            url = urlsplit(self.path)
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            key = q.get("k")
            with state.lock:
                state.requests.append((self.command, self.path, dict(self.headers), body))
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
                if key:
                    n = state.in_flight_by_key[key] = state.in_flight_by_key.get(key, 0) + 1
                    state.max_in_flight_by_key[key] = max(state.max_in_flight_by_key.get(key, 0), n)
            self._counted, self._key = True, key
            try:
                self._route(url.path, q, body)
            finally:
                self._done()

        def _route(self, path, q, body):
            if path in ("/ok", "/health"):
                self._send(200, HEALTHY_DOC)
            elif path == "/slow":
                time.sleep(int(q.get("ms", 800)) / 1000.0)
                self._send(200, HEALTHY_DOC)
            elif path == "/fail":
                self._send(500, {"status": "unhealthy", "error": "database unreachable"})
            elif path == "/degraded":
                self._send(200, dict(HEALTHY_DOC, status="degraded", checks={"influxdb": "down"}))
            elif path == "/redirect":
                self._send(302, {"detail": "moved"}, extra={"Location": "/ok"})
            elif path == "/text":
                self._send(200, "OK: service up\n", ctype="text/plain")
            elif path == "/banner":
                # what the runbook's health-check.sh --json printed: a banner, then JSON
                self._send(200, "HomeIQ Health Check v2.1\n==========\n" + json.dumps(HEALTHY_DOC), ctype="application/json")
            elif path == "/big":
                size = int(q.get("mb", 5)) * 1024 * 1024
                self._send(200, b'{"status": "healthy", "pad": "' + b"x" * size + b'"}')
            elif path == "/auth":
                if self.headers.get("Authorization") == TOKEN:
                    self._send(200, {"status": "healthy", "authenticated": True})
                else:
                    self._send(401, {"detail": "Not authenticated"})
            elif path.startswith("/flaky/"):
                with state.lock:
                    n = state.counters[path] = state.counters.get(path, 0) + 1
                if n <= int(q.get("fail", 2)):
                    self._send(503, {"status": "starting"})
                else:
                    self._send(200, HEALTHY_DOC)
            elif path == "/echo":
                self._send(200, {"method": self.command, "body": body.decode("utf-8", "replace")})
            elif path == "/hang":
                time.sleep(float(q.get("s", 30)))
                self._send(200, HEALTHY_DOC)
            else:
                self._send(404, {"detail": "Not Found"})

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    return Handler


class Fixture:
    def __init__(self):
        self.state = State()
        self.server = Server(("127.0.0.1", 0), make_handler(self.state))
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def refused_port():
    """A loopback port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
