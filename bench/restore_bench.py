"""Time to restore on the demo stack: rollback.yml bringing back the previous release's exact images
and verifying them healthy, against the floor of a plain `docker compose up -d --wait` of the same images.

Both start from release B running with A's images on the host. The rollback's time covers the target
check, the restore (recreate and wait for health), the verify role's probes and the ledger records.

Run: .venv/bin/python bench/restore_bench.py [--rounds N]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy_bench import BIN, DEMO, REPO, Stack, timed  # noqa: E402


def image_ids(stack):
    out = subprocess.run(["docker", "compose", "--project-directory", str(DEMO), "-p", stack.name, "ps", "-q"],
                         capture_output=True, text=True, check=True).stdout.split()
    ids = {}
    for cid in out:
        info = json.loads(subprocess.run(["docker", "inspect", cid], capture_output=True, text=True, check=True).stdout)[0]
        ids[info["Config"]["Labels"]["com.docker.compose.service"]] = info["Image"]
    return ids


def rollback(stack, images):
    extra = {"deploy_project_src": str(DEMO), "deploy_project_name": stack.name,
             "deploy_env_files": [str(stack.env_file("b"))], "deploy_lock_dir": str(stack.tmp / "locks"),
             "ledger_path": str(stack.tmp / "ledger.sqlite3"), "ledger_project": stack.name,
             "verify_report_dir": str(stack.tmp / "reports"), "rollback_images": images, "rollback_notify": False}
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), LC_ALL="C.UTF-8",
               PATH=f"{BIN}:{os.environ['PATH']}", **{f"HOMEIQ_{k}_PORT": str(p) for k, p in stack.ports.items()})
    subprocess.run([str(BIN / "ansible-playbook"), str(REPO / "rollback.yml"), "-i", str(REPO / "inventories/local"),
                    "-e", json.dumps(extra)], check=True, capture_output=True, cwd=REPO, env=env)


def floor(stack, images):
    """Retag A's images as the service images and let Compose recreate and wait: the least work there is."""
    for svc, image_id in images.items():
        subprocess.run(["docker", "tag", image_id, f"{stack.name}-{svc}:latest"], check=True)
    stack.compose("b", "up", "-d", "--wait", "--no-build")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    rounds = ap.parse_args().rounds
    figures = {"floor": [], "rollback": []}
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(tmp)
        try:
            stack.manual("a")
            images_a = image_ids(stack)
            for dummy in range(rounds):
                for way, fn in (("floor", floor), ("rollback", rollback)):
                    stack.manual("b")                  # B runs; A's images are on the host
                    figures[way].append(timed(fn, stack, images_a))
                    assert image_ids(stack) == images_a, f"{way} did not restore A"
        finally:
            stack.down()
    f, r = statistics.median(figures["floor"]), statistics.median(figures["rollback"])
    load = os.getloadavg()[0]
    print(f"demo stack, 7 services, {rounds} rounds, median seconds (load average {load:.1f})")
    print(f"{'floor: docker compose up -d --wait of the same images':<58}{f:>8.2f}")
    print(f"{'rollback.yml: check, restore, verify, record':<58}{r:>8.2f}")
    print(f"{'ratio rollback / floor':<58}{r / f:>8.2f}")


if __name__ == "__main__":
    main()
