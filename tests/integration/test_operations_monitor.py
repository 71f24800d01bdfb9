"""monitor.yml on this machine: the scheduled verification installed with ansible.builtin.cron
(a cron file under the test's folder), its job run as cron runs it against a real HTTP service,
JSON lines appended, the log rotated by logrotate, and the schedule removed again."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tests.conftest import REPO
from tests.integration.conftest import require_tool


class Health:
    """A service on 127.0.0.1 whose /health answers healthy until told otherwise."""

    def __init__(self):
        self.healthy = True
        state = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                ok = state.healthy and self.path == "/health"
                body = json.dumps({"status": "healthy" if ok else "down"}).encode()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def health():
    h = Health()
    yield h
    h.close()


def apt_install(*packages):
    """Installs Debian packages without starting their services (a policy-rc.d for the install)."""
    policy = "/usr/sbin/policy-rc.d"
    made = not os.path.exists(policy)
    if made:
        with open(policy, "w") as fh:
            fh.write("#!/bin/sh\nexit 101\n")
        os.chmod(policy, 0o755)
    try:
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        if subprocess.run(["apt-get", "install", "-y", "-qq", *packages], capture_output=True, env=env, check=False).returncode:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", *packages], capture_output=True, env=env, check=False)
    finally:
        if made:
            os.remove(policy)


@pytest.fixture(scope="module")
def logrotate():
    """The tools the role schedules with: crontab (ansible.builtin.cron needs it, even for a cron
    file) and logrotate; installed from Debian when missing, as the role's monitor_packages would."""
    missing = [pkg for tool, pkg in (("crontab", "cron"), ("logrotate", "logrotate")) if not shutil.which(tool)]
    if missing:
        apt_install(*missing)
    require_tool("crontab")
    return require_tool("logrotate")


def write_inventory(tmp_path, port):
    """This machine as the one host of group homeiq, verified by one real service check."""
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "hosts.yml").write_text(yaml.safe_dump({"homeiq": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    (inv / "group_vars" / "all" / "verify.yml").write_text(yaml.safe_dump({
        "verify_project_name": "",
        "verify_retries": 0,
        "verify_services": [{"name": "web", "port": port, "critical": True, "json_query": "status",
                             "json_equals": "healthy"}],
    }))
    return inv


def test_scheduled_verification_install_run_rotate_remove(health, logrotate, playbook, tmp_path):
    inv = write_inventory(tmp_path, health.port)
    cron_file = tmp_path / "cron.d" / "homeiq-monitor"
    cron_file.parent.mkdir()
    log = tmp_path / "log" / "verify.jsonl"
    settings = {
        "monitor_packages": [],
        "monitor_dir": str(tmp_path / "monitor"),
        "monitor_log": str(log),
        "monitor_cron_file": str(cron_file),
        "monitor_cron_user": "root",
        "monitor_cron_minute": "*/10",
        "monitor_logrotate_dir": str(tmp_path / "logrotate.d"),
        "monitor_environment": {"HOMEIQ_MONITOR_TEST": "1"},
    }
    (tmp_path / "logrotate.d").mkdir()
    job = tmp_path / "monitor" / "bin" / "homeiq-verify-job"

    # check -> real -> check -> real
    run = playbook(REPO / "monitor.yml", inventory=inv, extra_vars=settings, check=True)
    assert run.rc == 0, run.output
    assert run.task("Cron entry")["result"]["changed"] is True
    assert not cron_file.exists() and not job.exists()
    run = playbook(REPO / "monitor.yml", inventory=inv, extra_vars=settings)
    assert run.rc == 0, run.output
    assert run.task("Cron entry")["result"]["changed"] is True
    assert run.task("Job script")["result"]["changed"] is True
    for check in (True, False):
        run = playbook(REPO / "monitor.yml", inventory=inv, extra_vars=settings, check=check)
        assert run.rc == 0, run.output
        assert "changed=0" in run.stdout, run.stdout[-3000:]

    entry = [ln for ln in cron_file.read_text().splitlines() if ln and not ln.startswith("#")]
    assert entry == [f"*/10 * * * * root {job}"], cron_file.read_text()
    rotate_conf = (tmp_path / "logrotate.d" / "homeiq-monitor").read_text()
    assert f"{log} {{" in rotate_conf and "rotate 14" in rotate_conf and "daily" in rotate_conf
    script = job.read_text()
    assert "export HOMEIQ_MONITOR_TEST=1" in script and f"-i {inv}" in script

    # The job, as cron runs it: a bare environment.
    cron_env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "SHELL": "/bin/sh"}
    proc = subprocess.run([str(job)], env=cron_env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, (proc.stdout, proc.stderr, *(p.read_text()[-3000:] for p in
                                                              (tmp_path / "monitor" / "reports").glob("*.out")))
    lines = [json.loads(ln) for ln in log.read_text().splitlines()]
    assert len(lines) == 1
    first = lines[0]
    assert first["host"] == "localhost" and first["status"] == "pass", first
    assert first["run_id"].startswith("monitor-") and first["summary"]["total"] == 1
    assert [s["name"] for s in first["services"]] == ["web"] and first["services"][0]["status"] == "healthy"
    assert first["report_path"] == str(tmp_path / "monitor" / "reports" / f"verify-{first['run_id']}.json")
    assert json.loads(open(first["report_path"]).read())["overall_status"] == "pass"

    # The service goes down: the next run appends a failing line and exits non-zero (cron reports it).
    health.healthy = False
    proc = subprocess.run([str(job)], env=cron_env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0
    lines = [json.loads(ln) for ln in log.read_text().splitlines()]
    assert len(lines) == 2 and lines[1]["status"] == "fail", lines[1]
    assert lines[1]["failed_services"] == ["web"] and lines[1]["summary"]["critical_failed"] == 1

    # logrotate rotates the log with the installed configuration.
    state = tmp_path / "logrotate.state"
    proc = subprocess.run([logrotate, "--state", str(state), "--force", str(tmp_path / "logrotate.d" / "homeiq-monitor")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    rotated = log.parent / "verify.jsonl.1.gz"
    assert rotated.exists(), sorted(p.name for p in log.parent.iterdir())
    assert not log.exists() or log.read_text() == ""

    # Removal: check -> real -> check -> real.
    absent = dict(settings, monitor_state="absent")
    run = playbook(REPO / "monitor.yml", inventory=inv, extra_vars=absent, check=True)
    assert run.rc == 0 and run.task("Cron entry")["result"]["changed"] is True, run.output
    assert job.exists()
    run = playbook(REPO / "monitor.yml", inventory=inv, extra_vars=absent)
    assert run.rc == 0 and run.task("Cron entry")["result"]["changed"] is True, run.output
    assert not job.exists() and not (tmp_path / "logrotate.d" / "homeiq-monitor").exists()
    assert not cron_file.exists() or "homeiq-verify-job" not in cron_file.read_text()
    for check in (True, False):
        run = playbook(REPO / "monitor.yml", inventory=inv, extra_vars=absent, check=check)
        assert run.rc == 0 and "changed=0" in run.stdout, run.stdout[-3000:]
    assert rotated.exists()  # the log is kept
