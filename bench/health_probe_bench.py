"""Benchmark: health_probe against the runbook's sequential curl loop.

50 endpoints on 127.0.0.1 each answer after 200 ms. The runbook's scripts curl them one after
another (about 50 x 200 ms = 10 s); health_probe judges them concurrently. Prints the wall
times (median of --repeat runs) and the ratio. Run from the repository root:

    .venv/bin/python bench/health_probe_bench.py [--endpoints 50] [--delay-ms 200] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.homeiq.deploy.plugins.module_utils import _probe  # noqa: E402


class Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 would stall concurrent clients
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def start_servers(count, delay):
    body = json.dumps({"status": "healthy"}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    servers = []
    for _index in range(count):
        srv = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    return servers


def curl_loop(urls):
    """The runbook's way: one curl after another."""
    start = time.perf_counter()
    for url in urls:
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", url],
                             capture_output=True, text=True, check=False)
        if out.stdout != "200":
            raise SystemExit("curl %s answered %r" % (url, out.stdout))
    return time.perf_counter() - start


def probe_direct(urls, concurrency):
    targets = [{"name": "svc-%02d" % i, "url": u, "json_query": "status", "json_equals": "healthy",
                "max_latency_ms": 10000}
               for i, u in enumerate(urls)]
    start = time.perf_counter()
    result, failure = _probe.run({"targets": targets, "concurrency": concurrency, "retries": 0}, containers=object())
    wall = time.perf_counter() - start
    if failure or result["overall_status"] != "pass":
        bad = [(s["name"], s["error"]) for s in result["services"] if s["status"] != "healthy"][:3]
        raise SystemExit("probe did not pass: %s %s" % (failure or result["overall_status"], bad))
    return wall


def probe_playbook(urls, concurrency, tmp):
    targets = [{"name": "svc-%02d" % i, "url": u, "json_query": "status", "json_equals": "healthy",
                "max_latency_ms": 10000}
               for i, u in enumerate(urls)]
    play = Path(tmp) / "bench.yml"
    play.write_text(json.dumps([{"name": "bench", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "probe", "homeiq.deploy.health_probe": {"targets": targets, "concurrency": concurrency, "retries": 0}}]}]))
    inv = Path(tmp) / "inventory.ini"
    inv.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), LC_ALL="C.UTF-8", LANG="C.UTF-8")
    ansible = str(Path(sys.executable).parent / "ansible-playbook")
    start = time.perf_counter()
    proc = subprocess.run([ansible, "-i", str(inv), str(play)], cwd=REPO, env=env, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
    return wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoints", type=int, default=50)
    ap.add_argument("--delay-ms", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-playbook", action="store_true", help="skip the ansible-playbook measurement")
    args = ap.parse_args()
    servers = start_servers(5, args.delay_ms / 1000.0)
    urls = ["http://127.0.0.1:%d/svc/%d/health" % (servers[i % len(servers)].server_address[1], i)
            for i in range(args.endpoints)]

    def median(fn, *a):
        return statistics.median([fn(*a) for _run in range(args.repeat)])

    rows = []
    curl = median(curl_loop, urls)
    rows.append(("runbook: sequential curl loop", curl))
    rows.append(("health_probe logic, concurrency 16 (default)", median(probe_direct, urls, 16)))
    rows.append(("health_probe logic, concurrency 50", median(probe_direct, urls, 50)))
    if not args.no_playbook:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(("ansible-playbook + health_probe, concurrency 16", median(probe_playbook, urls, 16, tmp)))
            rows.append(("ansible-playbook + health_probe, concurrency 50", median(probe_playbook, urls, 50, tmp)))
    sys.stdout.write("%d endpoints answering after %d ms each; median of %d runs; %d CPUs, load %.1f\n"
                     % (args.endpoints, args.delay_ms, args.repeat, os.cpu_count(), os.getloadavg()[0]))
    width = max(len(r[0]) for r in rows)
    for label, secs in rows:
        ratio = "" if secs == curl else "   %5.1fx faster than curl" % (curl / secs)
        sys.stdout.write("  %-*s %7.2f s%s\n" % (width, label, secs, ratio))
    for srv in servers:
        srv.shutdown()


if __name__ == "__main__":
    main()
