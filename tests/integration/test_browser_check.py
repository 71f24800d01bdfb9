"""homeiq.deploy.browser_check through real ansible-playbook runs, in the real headless Chromium,
against pages served by an HTTP server the test starts on 127.0.0.1: a good page passes; a page
with a console.error, an uncaught exception, a 404 image, a 404 script, a failing fetch, a missing
element or a request that never ends each fail with their own finding."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.conftest import free_port, write_play

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "browser" / "page.html"

PAGES = {
    # the fixture page: a script that fills a table from a JSON API, as the dashboard does
    "/good": FIXTURE.read_text(),
    "/console-error": "<!DOCTYPE html><title>t</title><div id='app'>x</div>"
                      "<script>console.error('metrics unavailable', 503)</script>",
    "/exception": "<!DOCTYPE html><title>t</title><div id='app'>x</div><script>window.nothere.call()</script>",
    "/missing-image": "<!DOCTYPE html><title>t</title><div id='app'><img src='/img/logo.png' alt='logo'></div>",
    "/missing-script": "<!DOCTYPE html><title>t</title><div id='app'>x</div><script src='/js/app.js'></script>",
    "/failing-fetch": "<!DOCTYPE html><title>t</title><div id='app'>x</div>"
                      "<script>fetch('/api/broken').then(function (r) { return r.text(); })</script>",
    "/no-element": "<!DOCTYPE html><title>t</title><div id='other'>x</div>",
    "/slow": "<!DOCTYPE html><title>t</title><div id='app'>x</div><script>fetch('/api/slow')</script>",
}
JSON = {"/api/metrics": '{"events_per_minute": 42, "services": 7}', "/api/broken": None}


class Site:
    """A real HTTP server on loopback serving the test pages; /api/slow answers after 20 s."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                if path == "/api/slow":
                    time.sleep(20)
                if path in PAGES:
                    self._send(200, "text/html; charset=utf-8", PAGES[path])
                elif JSON.get(path):
                    self._send(200, "application/json", JSON[path])
                elif path == "/api/broken":
                    self._send(500, "application/json", '{"error": "boom"}')
                else:
                    self._send(404, "text/plain", "not found")

            def _send(self, code, ctype, text):
                body = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.request_queue_size = 64
        ThreadingHTTPServer.daemon_threads = True
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def site():
    s = Site()
    yield s
    s.server.shutdown()
    s.server.server_close()


def chromium():
    proc = subprocess.run([str(REPO / "scripts" / "ensure-chromium")], capture_output=True, text=True, timeout=1200, check=False)
    if proc.returncode != 0:
        pytest.fail("Chromium could not be set up (scripts/ensure-chromium):\n" + proc.stderr[-2000:])
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module", autouse=True)
def browser_installed():
    chromium()


def browsers_of(tmpdir):
    """Chromium processes whose profile is under tmpdir (this test's runs only)."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "--user-data-dir=%s" % tmpdir in line]


def check_all(playbook, tmp_path, checks, check_mode=False):
    """browser_check with each args of `checks` in one real ansible-playbook run; TMPDIR is the
    test's own, so a profile left behind would show."""
    # short, as a temporary folder usually is (Chromium's socket path below it must stay under 108 bytes)
    tmpdir = Path(tempfile.mkdtemp(prefix="bc-", dir="/tmp"))
    tasks = [{"name": "browser_check %d" % n, "homeiq.deploy.browser_check": args, "ignore_errors": True}
             for n, args in enumerate(checks)]
    play = write_play(tmp_path, tasks)
    inventory = tmp_path / "inv.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    try:
        run = playbook(play, inventory=inventory, check=check_mode, env={"TMPDIR": str(tmpdir)})
        assert run.rc == 0, run.output[-3000:]
        results = []
        for n in range(len(checks)):
            record = run.task("browser_check %d" % n)
            results.append(dict(record["result"], task_status=record["status"]))
        left = [p.name for p in tmpdir.iterdir() if not p.name.startswith("ansible")]
        assert left == [], "the temporary profile was left behind"
        assert browsers_of(tmpdir) == [], "the browser was left running"
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    for result in results:
        assert result["changed"] is False
    return results


def check(playbook, tmp_path, args, check_mode=False):
    return check_all(playbook, tmp_path, [args], check_mode=check_mode)[0]


def test_a_good_page_passes_in_check_mode_and_for_real(site, playbook, tmp_path):
    for check_mode in (True, False):
        result = check(playbook, tmp_path, {"url": site.base + "/good", "wait_for": "#metrics td", "timeout": 30},
                       check_mode=check_mode)
        assert result["ok"] is True, result["msg"]
        assert result["task_status"] == "ok"
        assert result["console_errors"] == [] and result["failed_requests"] == []
        assert result["element_found"] is True and result["status_code"] == 200
        assert result["msg"].startswith("browser check of %s/good passed in " % site.base)
        assert result["msg"].endswith(" ms, #metrics td found")
        assert 0 < result["elapsed_ms"] < 30000


BROKEN = [
    ("/console-error", ["console.error: metrics unavailable 503 (%s/console-error:1)"], []),
    ("/exception", ["Uncaught TypeError: Cannot read properties of undefined (reading 'call') (%s/exception:1)"], []),
    ("/missing-image", [], [("/img/logo.png", "Image", 404)]),
    ("/missing-script", [], [("/js/app.js", "Script", 404)]),
    ("/failing-fetch", [], [("/api/broken", "Fetch", 500)]),
]


def test_a_broken_page_fails_with_its_finding(site, playbook, tmp_path):
    results = check_all(playbook, tmp_path, [{"url": site.base + path, "wait_for": "#app", "timeout": 30}
                                             for path, _c, _f in BROKEN])
    for (path, console, failed), result in zip(BROKEN, results):
        assert result["task_status"] == "ignored" and result["ok"] is False, (path, result["msg"])
        assert result["console_errors"] == [c % site.base for c in console], path
        assert [(r["url"], r["type"], r["status"]) for r in result["failed_requests"]] == [
            (site.base + p, kind, status) for p, kind, status in failed], path
        assert result["element_found"] is True
        assert result["msg"].startswith("browser check of %s%s failed: 1 " % (site.base, path))
        if failed:
            assert "1 failed request: %s%s HTTP %d" % (site.base, failed[0][0], failed[0][2]) in result["msg"]
        else:
            assert "1 console error: " + console[0] % site.base in result["msg"]


def test_a_missing_element_fails_after_the_timeout(site, playbook, tmp_path):
    result = check(playbook, tmp_path, {"url": site.base + "/no-element", "wait_for": "#app td", "timeout": 20})
    assert result["task_status"] == "ignored" and result["element_found"] is False
    assert result["console_errors"] == [] and result["failed_requests"] == []
    assert result["msg"].startswith("browser check of %s/no-element failed within " % site.base)
    assert result["msg"].endswith(": element #app td not found")
    assert result["loaded"] is True
    assert 20000 <= result["elapsed_ms"] < 22000


def test_a_request_that_never_ends_is_bounded_by_the_timeout(site, playbook, tmp_path):
    started = time.monotonic()
    result = check(playbook, tmp_path, {"url": site.base + "/slow", "timeout": 3})
    assert result["task_status"] == "ignored"
    assert "requests still in flight" in result["msg"] or "did not finish loading" in result["msg"]
    assert result["elapsed_ms"] < 4500
    assert time.monotonic() - started < 60


def test_a_server_that_is_not_there(playbook, tmp_path):
    url = "http://127.0.0.1:%d/" % free_port()
    result = check(playbook, tmp_path, {"url": url, "timeout": 15})
    assert result["task_status"] == "ignored"
    assert result["failed_requests"] == [{"url": url, "type": "Document", "status": None, "error": "net::ERR_CONNECTION_REFUSED"}]
    assert result["msg"] == "browser check of %s failed: 1 failed request: %s net::ERR_CONNECTION_REFUSED" % (url, url)


def test_a_bad_selector_and_a_missing_browser_are_one_line(site, playbook, tmp_path):
    result = check(playbook, tmp_path, {"url": site.base + "/good", "wait_for": "#metrics[", "timeout": 20})
    assert result["task_status"] == "ignored"
    assert result["msg"].startswith("wait_for '#metrics[' is not a valid CSS selector: SyntaxError: ")
    assert "\n" not in result["msg"]
    missing = tmp_path / "no-chromium"
    result = check(playbook, tmp_path, {"url": site.base + "/good", "executable": str(missing)})
    assert result["task_status"] == "ignored"
    assert result["msg"] == ("Chromium is not installed at %s: run make test-services (scripts/ensure-chromium), "
                             "or apt-get install chromium, or name the browser in executable" % missing)
    assert "Traceback" not in result["msg"]


def test_module_documentation_reads(tmp_path):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), LC_ALL="C.UTF-8")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "homeiq.deploy.browser_check"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "wait_for" in proc.stdout and "failed_requests" in proc.stdout and "check_mode" in proc.stdout
