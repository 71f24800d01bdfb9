"""deploy.yml against the runbook's manual steps, on the demo stack and the real engine.

The manual way: `docker compose build --parallel`, `docker compose up -d --wait`, then a curl of
every service's /health. Each way is timed on a release change (A deployed, deploy B) and on a
no-change run (B again), from the same starting state, and the ratio is printed.

Run: .venv/bin/python bench/deploy_bench.py [--rounds N]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "homeiq-demo"
BIN = Path(sys.executable).parent
SERVICES = {"INFLUXDB": 8086, "WEBSOCKET_INGESTION": 8001, "DATA_API": 8006, "ADMIN_API": 8004,
            "AI_PATTERN_SERVICE": 8034, "AI_AUTOMATION_SERVICE": 8036, "HEALTH_DASHBOARD": 3000}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    def __init__(self, tmp):
        self.name = "bench" + uuid.uuid4().hex[:6]
        self.tmp = Path(tmp)
        self.ports = {k: free_port() for k in SERVICES}

    def env_file(self, release):
        path = self.tmp / f"{release}.env"
        path.write_text(f"HOMEIQ_RELEASE={release}\n" + "".join(f"HOMEIQ_{k}_PORT={p}\n" for k, p in self.ports.items()))
        return path

    def compose(self, release, *args):
        cmd = ["docker", "compose", "--project-directory", str(DEMO), "-p", self.name,
               "--env-file", str(self.env_file(release))] + list(args)
        subprocess.run(cmd, check=True, capture_output=True)

    def curls(self):
        for k, port in self.ports.items():
            path = "/" if k == "HEALTH_DASHBOARD" else "/health"
            subprocess.run(["curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{port}{path}"], check=True)

    def manual(self, release):
        self.compose(release, "build", "--parallel")
        self.compose(release, "up", "-d", "--wait")
        self.curls()

    def playbook(self, release, phases=False):
        """deploy.yml; with phases=False only its deploy phase (the manual steps' equivalent) runs."""
        extra = {"deploy_project_name": self.name, "deploy_env_files": [str(self.env_file(release))],
                 "deploy_lock_dir": str(self.tmp / "locks"), "ledger_path": str(self.tmp / "ledger.sqlite3"),
                 "ledger_project": self.name, "preflight_env_files": [str(self.env_file(release))]}
        for phase in ("preflight", "verify", "ledger", "notify"):
            extra[f"pipeline_{phase}"] = phases
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), LC_ALL="C.UTF-8",
                   PATH=f"{BIN}:{os.environ['PATH']}")
        subprocess.run([str(BIN / "ansible-playbook"), str(REPO / "deploy.yml"), "-i", str(REPO / "inventories/local"),
                        "-e", json.dumps(extra)], check=True, capture_output=True, cwd=REPO, env=env)

    def down(self):
        subprocess.run(["docker", "compose", "--project-directory", str(DEMO), "-p", self.name, "down", "-t", "1",
                        "--rmi", "local"], capture_output=True, check=False)


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--phases", action="store_true",
                    help="also time deploy.yml with preflight, ledger, verify and notify on")
    args = ap.parse_args()
    rounds = args.rounds
    ways = {"manual": None, "deploy.yml (deploy phase)": False}
    if args.phases:
        ways["deploy.yml (all phases)"] = True
    figures = {w: {"change": [], "nochange": []} for w in ways}
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(tmp)
        try:
            stack.manual("a")
            stack.manual("b")          # warm the build cache of both releases for both ways
            for dummy in range(rounds):
                for way, phases in ways.items():
                    fn = stack.manual if phases is None else (lambda r, p=phases: stack.playbook(r, p))
                    fn("a")            # the same starting state: A deployed
                    figures[way]["change"].append(timed(fn, "b"))
                    figures[way]["nochange"].append(timed(fn, "b"))
        finally:
            stack.down()
    print(f"demo stack, 7 services, {rounds} rounds, median seconds; ratio = way / manual steps")
    print(f"{'case':<16}{'way':<28}{'seconds':>9}{'ratio':>8}")
    for case, label in (("change", "release A -> B"), ("nochange", "no change")):
        m = statistics.median(figures["manual"][case])
        for way in ways:
            d = statistics.median(figures[way][case])
            print(f"{label:<16}{way:<28}{d:>9.2f}{d / m:>8.2f}")


if __name__ == "__main__":
    main()
