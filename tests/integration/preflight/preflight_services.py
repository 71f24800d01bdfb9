"""Real HTTP servers speaking the parts of Home Assistant and InfluxDB 2 the preflight checks use.

Home Assistant: GET /api/ answers 200 {"message": "API running."} with `Authorization: Bearer
<token>`, and 401 "401: Unauthorized" without it or with a wrong one (as Home Assistant does).
InfluxDB 2: GET /health answers {"status": "pass"} (or 503 {"status": "fail"} when built
unhealthy); GET /api/v2/buckets needs `Authorization: Token <token>` (401 {"code":
"unauthorized"} otherwise) and filters by ?name=. Each server listens on its own 127.0.0.1 port.
"""
from __future__ import annotations

import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


class _Handler(BaseHTTPRequestHandler):
    server_version = "preflight-test/1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _auth(self, scheme):
        got_scheme, _sep, value = self.headers.get("Authorization", "").partition(" ")
        self.server.seen_auth.append(self.headers.get("Authorization", ""))
        return got_scheme == scheme and hmac.compare_digest(value.strip().encode(), self.server.token.encode())


class HomeAssistantHandler(_Handler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        path = urlsplit(self.path).path
        if path != "/api/":
            return self._send(404, "404: Not Found", "text/plain")
        if not self._auth("Bearer"):
            return self._send(401, "401: Unauthorized", "text/plain")
        return self._send(200, {"message": "API running."})


class InfluxHandler(_Handler):
    def do_GET(self):  # noqa: N802
        url = urlsplit(self.path)
        if url.path == "/health":
            if self.server.healthy:
                return self._send(200, {"name": "influxdb", "message": "ready for queries and writes", "status": "pass",
                                        "checks": [], "version": "v2.7.10", "commit": "test"})
            return self._send(503, {"name": "influxdb", "message": "storage engine is not ready", "status": "fail",
                                    "checks": [], "version": "v2.7.10", "commit": "test"})
        if url.path.startswith("/api/v2/"):
            if not self._auth("Token"):
                return self._send(401, {"code": "unauthorized", "message": "unauthorized access"})
            if url.path == "/api/v2/buckets":
                query = parse_qs(url.query)
                buckets = [{"id": "b%02d" % i, "orgID": "o1", "name": n, "type": "user"}
                           for i, n in enumerate(self.server.buckets)]
                if "name" in query:
                    buckets = [b for b in buckets if b["name"] == query["name"][0]]
                return self._send(200, {"links": {"self": "/api/v2/buckets"}, "buckets": buckets})
            return self._send(404, {"code": "not found", "message": "path not found"})
        return self._send(404, {"code": "not found", "message": "path not found"})


class Service:
    """One server on 127.0.0.1 in a background thread; `url`, `seen_auth`, `stop()`."""

    def __init__(self, handler, token, **attrs):
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.httpd.token = token
        self.httpd.seen_auth = []
        for k, v in attrs.items():
            setattr(self.httpd, k, v)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def seen_auth(self):
        return self.httpd.seen_auth

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def home_assistant(token):
    return Service(HomeAssistantHandler, token)


def influxdb(token, healthy=True, buckets=("home_assistant_events",)):
    return Service(InfluxHandler, token, healthy=healthy, buckets=list(buckets))
