# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loads a page in headless Chromium and judges it, for homeiq.deploy.browser_check.

Private to the homeiq.deploy collection: not a public API, may change without notice.

Chromium is driven over the DevTools protocol on ``--remote-debugging-pipe``: JSON messages
separated by NUL bytes, written to the browser's file descriptor 3 and read from its 4. No
Python dependency beyond the standard library. ``PageWatch`` is the pure part (it reads the
protocol's events and judges the page) so it is unit tested without a browser; ``check_page``
runs the browser, always kills it and removes its temporary profile.
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time

from ansible_collections.homeiq.deploy.plugins.module_utils._probe import redact_url

DEFAULT_CHROMIUMS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# The flags that work on these machines (headless, as root, no network but loopback): without the
# background-networking ones Chromium keeps opening connections that the closed network refuses.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
                  "--window-size=1280,1024", "--remote-debugging-pipe")
# Quiet time without requests in flight after the load event, so late requests (fetch) are seen.
SETTLE_S = 0.5
POLL_S = 0.1
MAX_LISTED = 5
MISSING = ("Chromium is not installed at %s: run make test-services (scripts/ensure-chromium), "
           "or apt-get install chromium, or name the browser in executable")


class BrowserError(Exception):
    """The check could not run (no browser, bad input, the browser died); one line."""


def find_chromium(executable=None, environ=None):
    """The browser to run: executable, else $HOMEIQ_CHROMIUM, else Debian's chromium."""
    environ = os.environ if environ is None else environ
    candidates = [executable] if executable else [c for c in (environ.get("HOMEIQ_CHROMIUM"),) if c] + list(DEFAULT_CHROMIUMS)
    for candidate in candidates:
        path = candidate if os.path.sep in candidate else shutil.which(candidate)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise BrowserError(MISSING % (executable or DEFAULT_CHROMIUMS[0]))


def _short(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _remote_value(arg):
    """A console argument (a Runtime.RemoteObject) as text."""
    if "value" in arg:
        value = arg["value"]
        return value if isinstance(value, str) else json.dumps(value)
    return arg.get("description") or arg.get("unserializableValue") or arg.get("type", "")


def _where(url, line=None):
    if not url:
        return ""
    return " (%s%s)" % (url, ":%d" % (line + 1) if isinstance(line, int) else "")


def _automatic_favicon(url, kind, initiator):
    """The request for /favicon.ico that Chromium makes by itself for every page."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    return (path.endswith("/favicon.ico") and path.count("/") == 3 and kind == "Other"
            and (initiator or {}).get("type", "other") == "other")


class PageWatch:
    """Collects what a page does from DevTools events and judges it."""

    def __init__(self, url, wait_for=None):
        self.url = url
        self.shown_url = redact_url(url)  # what results and messages say: no password, as health_probe
        self.wait_for = wait_for
        self.console_errors = []
        self.failed_requests = []
        self.requests = {}  # requestId -> {url, type}
        self.in_flight = set()
        self.loaded = False
        self.page_status = None
        self.element_found = None if not wait_for else False
        self.last_activity = time.monotonic()

    # ---- events -------------------------------------------------------------------------------
    def handle(self, message, now=None):
        """Feeds one DevTools message (events; command answers are ignored)."""
        method = message.get("method")
        params = message.get("params") or {}
        now = time.monotonic() if now is None else now
        if method == "Runtime.consoleAPICalled":
            if params.get("type") in ("error", "assert"):
                text = " ".join(_remote_value(a) for a in params.get("args") or [])
                frames = (params.get("stackTrace") or {}).get("callFrames") or []
                where = _where(frames[0].get("url"), frames[0].get("lineNumber")) if frames else ""
                self._console("console.%s: %s%s" % (params.get("type"), _short(text), where))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails") or {}
            exc = details.get("exception") or {}
            text = exc.get("description") or details.get("text") or "exception"
            text = text.splitlines()[0] if text else "exception"
            if details.get("text") and details["text"] not in text and not text.startswith("Uncaught"):
                text = "%s %s" % (details["text"], text)
            self._console("%s%s" % (_short(text), _where(details.get("url"), details.get("lineNumber"))))
        elif method == "Log.entryAdded":
            entry = params.get("entry") or {}
            # network errors are reported as failed requests, with their URL and status
            if entry.get("level") == "error" and entry.get("source") != "network":
                self._console("%s%s" % (_short(entry.get("text", "")), _where(entry.get("url"), entry.get("lineNumber"))))
        elif method == "Network.requestWillBeSent":
            request_id = params.get("requestId")
            request = {"url": (params.get("request") or {}).get("url", ""), "type": params.get("type") or "Other"}
            if _automatic_favicon(request["url"], request["type"], params.get("initiator")):
                return  # the browser's own favicon request, not one the page makes
            self.requests[request_id] = request
            self.in_flight.add(request_id)
            self.last_activity = now
        elif method == "Network.responseReceived":
            if params.get("requestId") not in self.requests:
                return
            response = params.get("response") or {}
            status = response.get("status")
            url = response.get("url") or self.requests.get(params.get("requestId"), {}).get("url", "")
            kind = params.get("type") or self.requests.get(params.get("requestId"), {}).get("type", "Other")
            if kind == "Document" and self.page_status is None and url.split("#")[0] == self.url.split("#")[0]:
                self.page_status = status
            if isinstance(status, (int, float)) and status >= 400 and not url.startswith("data:"):
                self._failed(url, kind, status=int(status), error="HTTP %d" % int(status))
            self.last_activity = now
        elif method in ("Network.loadingFinished", "Network.loadingFailed"):
            request_id = params.get("requestId")
            if request_id not in self.requests:
                return
            self.in_flight.discard(request_id)
            self.last_activity = now
            if method == "Network.loadingFailed" and not params.get("canceled"):
                request = self.requests.get(request_id, {})
                error = params.get("errorText") or "failed"
                if params.get("blockedReason"):
                    error += " (blocked: %s)" % params["blockedReason"]
                self._failed(request.get("url", ""), params.get("type") or request.get("type", "Other"), error=error)
        elif method == "Page.loadEventFired":
            self.loaded = True
            self.last_activity = now

    def navigation_failed(self, error_text):
        """Page.navigate answered with an errorText (no connection, bad certificate...)."""
        self._failed(self.url, "Document", error=error_text)

    def _console(self, text):
        if text not in self.console_errors:
            self.console_errors.append(text)

    def _failed(self, url, kind, status=None, error=""):
        entry = {"url": redact_url(url), "type": kind, "status": status, "error": error}
        if entry not in self.failed_requests:
            self.failed_requests.append(entry)

    # ---- judging ------------------------------------------------------------------------------
    def settled(self, now=None):
        """Loaded, nothing in flight for SETTLE_S, and the element (if any) found."""
        now = time.monotonic() if now is None else now
        quiet = not self.in_flight and now - self.last_activity >= SETTLE_S
        return self.loaded and quiet and self.element_found is not False

    def result(self, elapsed_ms, timed_out=False):
        ok = (not self.console_errors and not self.failed_requests and self.element_found is not False
              and self.loaded and not timed_out)
        return {"ok": ok, "url": self.shown_url, "status_code": self.page_status, "console_errors": list(self.console_errors),
                "failed_requests": list(self.failed_requests), "element_found": self.element_found,
                "loaded": self.loaded, "elapsed_ms": round(elapsed_ms, 1),
                "msg": self.message(ok, elapsed_ms, timed_out)}

    def message(self, ok, elapsed_ms, timed_out=False):
        if ok:
            found = ", %s found" % self.wait_for if self.wait_for else ""
            return "browser check of %s passed in %d ms%s" % (self.shown_url, elapsed_ms, found)
        problems = []
        if self.console_errors:
            problems.append("%d console error%s: %s" % (len(self.console_errors), "s" if len(self.console_errors) > 1 else "",
                                                        "; ".join(self.console_errors[:MAX_LISTED])))
        if self.failed_requests:
            problems.append("%d failed request%s: %s" % (
                len(self.failed_requests), "s" if len(self.failed_requests) > 1 else "",
                "; ".join("%s %s" % (r["url"], r["error"]) for r in self.failed_requests[:MAX_LISTED])))
        if self.element_found is False:
            problems.append("element %s not found" % self.wait_for)
        if not self.loaded:
            problems.append("the page did not finish loading")
        if timed_out and self.loaded and self.element_found is not False:
            problems.append("requests still in flight")
        after = " within %d ms" % elapsed_ms if timed_out or self.element_found is False or not self.loaded else ""
        return "browser check of %s failed%s: %s" % (self.shown_url, after, "; ".join(problems))


# ---- the browser --------------------------------------------------------------------------------
class DevToolsPipe:
    """NUL-separated JSON messages over the two pipes of --remote-debugging-pipe."""

    def __init__(self, write_fd, read_fd):
        self.write_fd = write_fd
        self.read_fd = read_fd
        self.buffer = b""
        self.next_id = 0
        self.closed = False

    def send(self, method, params=None, session_id=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        data = json.dumps(message).encode() + b"\0"
        while data:
            written = os.write(self.write_fd, data)
            data = data[written:]
        return self.next_id

    def receive(self, deadline):
        """The next message, or None at the deadline. Raises BrowserError when the browser went away."""
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _w, _x = select.select([self.read_fd], [], [], min(left, POLL_S))
            if not ready:
                continue
            chunk = os.read(self.read_fd, 1 << 16)
            if not chunk:
                self.closed = True
                raise BrowserError("Chromium closed its DevTools pipe (it exited)")
            self.buffer += chunk
        raw, _sep, self.buffer = self.buffer.partition(b"\0")
        return json.loads(raw.decode("utf-8", "replace"))


def _high_fd(fd):
    """A copy of fd numbered 10 or more (so moving it to 3 or 4 in the child clobbers nothing), inheritable."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.set_inheritable(new, True)
    return new


class _Session:
    def __init__(self, pipe, watch, deadline):
        self.pipe, self.watch, self.deadline = pipe, watch, deadline
        self.session_id = None

    def call(self, method, params=None):
        """Sends a command and waits for its answer, feeding every event on the way to the watch."""
        wanted = self.pipe.send(method, params, self.session_id)
        while True:
            message = self.pipe.receive(self.deadline)
            if message is None:
                raise TimeoutError(method)
            if message.get("id") == wanted:
                if "error" in message:
                    raise BrowserError("Chromium refused %s: %s" % (method, (message["error"] or {}).get("message", message["error"])))
                return message.get("result") or {}
            if message.get("sessionId") == self.session_id or "sessionId" not in message:
                self.watch.handle(message)

    def pump(self, until):
        """Feeds events to the watch until the time `until` (or the deadline)."""
        end = min(until, self.deadline)
        while time.monotonic() < end:
            message = self.pipe.receive(end)
            if message is None:
                return
            if message.get("sessionId") == self.session_id:
                self.watch.handle(message)


def check_page(url, wait_for=None, timeout=30.0, executable=None, environ=None):
    """Loads url in headless Chromium and judges it; the result dict of browser_check.

    Raises BrowserError when the check cannot run at all (no browser, a bad selector)."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "file://")):
        raise BrowserError("url %r must be an http://, https:// or file:// URL" % (url,))
    if timeout is None or timeout <= 0:
        raise BrowserError("timeout must be a positive number of seconds")
    started = time.monotonic()
    deadline = started + float(timeout)
    browser = find_chromium(executable, environ)
    watch = PageWatch(url, wait_for)
    profile = tempfile.mkdtemp(prefix="homeiq-browser-check-", dir=_short_tmp())
    os.mkdir(os.path.join(profile, "tmp"))
    env = dict(os.environ if environ is None else environ, TMPDIR=os.path.join(profile, "tmp"))
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    child_in, child_out = _high_fd(to_browser_r), _high_fd(from_browser_w)
    for fd in (to_browser_r, from_browser_w):
        os.close(fd)
    proc = pipe = None
    log = tempfile.TemporaryFile()

    def move_fds():  # in the child, before exec: the pipe ends become descriptors 3 and 4
        os.dup2(child_in, 3)
        os.dup2(child_out, 4)

    try:
        try:
            proc = subprocess.Popen(  # pylint: disable=ansible-bad-function,subprocess-popen-preexec-fn
                [browser] + list(CHROMIUM_FLAGS) + ["--user-data-dir=%s" % os.path.join(profile, "profile"), "about:blank"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(3, 4, child_in, child_out),
                preexec_fn=move_fds, start_new_session=True)
        except OSError as exc:
            raise BrowserError("cannot start Chromium %s: %s" % (browser, exc.strerror or exc)) from None
        finally:
            os.close(child_in)
            os.close(child_out)
        pipe = DevToolsPipe(to_browser_w, from_browser_r)
        session = _Session(pipe, watch, deadline)
        timed_out = False
        try:
            target = session.call("Target.createTarget", {"url": "about:blank"})
            attached = session.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
            session.session_id = attached["sessionId"]
            for domain in ("Runtime", "Log", "Network", "Page"):
                session.call(domain + ".enable")
            navigated = session.call("Page.navigate", {"url": url})
            if navigated.get("errorText"):
                watch.navigation_failed(navigated["errorText"])
                watch.loaded = True  # nothing more will load: judge now
            else:
                _wait_for_page(session, watch)
                timed_out = not watch.settled()
        except TimeoutError:
            timed_out = True
        except _BadSelector:
            raise
        except BrowserError as exc:
            raise BrowserError("%s; Chromium said: %s" % (exc, _tail(log))) from None
        except (OSError, ValueError, KeyError) as exc:  # it exited at once, or answered what DevTools never sends
            raise BrowserError("Chromium's DevTools pipe failed (%s); Chromium said: %s" % (exc.__class__.__name__, _tail(log))) from None
        if wait_for and watch.element_found is False and not timed_out:
            timed_out = True
        elapsed = (time.monotonic() - started) * 1000.0
        result = watch.result(elapsed, timed_out=timed_out)
        result["browser"] = browser
        return result
    finally:
        if proc is not None:
            _stop(proc, pipe)
        for fd in (to_browser_w, from_browser_r):
            try:
                os.close(fd)
            except OSError:
                pass
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


def _wait_for_page(session, watch):
    """Events until the page is loaded and quiet and the element is there, or the deadline."""
    while time.monotonic() < session.deadline:
        session.pump(time.monotonic() + POLL_S)
        if watch.loaded and watch.wait_for and watch.element_found is False:
            answer = session.call("Runtime.evaluate", {
                "expression": "document.querySelector(%s) !== null" % json.dumps(watch.wait_for), "returnByValue": True})
            if answer.get("exceptionDetails"):
                description = ((answer["exceptionDetails"].get("exception") or {}).get("description") or "").splitlines()
                raise _BadSelector("wait_for %r is not a valid CSS selector: %s" % (
                    watch.wait_for, description[0] if description else answer["exceptionDetails"].get("text")))
            watch.element_found = (answer.get("result") or {}).get("value") is True
        if watch.settled():
            return


class _BadSelector(BrowserError):
    pass


def _tail(log):
    try:
        log.seek(0)
        lines = [line for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return "nothing"
    return _short(" | ".join(lines[-6:]), 2000) if lines else "nothing"


def _short_tmp():
    """Where the profile goes: the temporary folder, unless its path is too long for the unix socket
    Chromium makes below it (108 bytes at most), then /tmp."""
    base = tempfile.gettempdir()
    return base if len(base) <= 40 or not os.path.isdir("/tmp") else "/tmp"


def _stop(proc, pipe=None):
    """Asks the browser to close, then kills it and everything it started (its own process group)."""
    if pipe is not None and proc.poll() is None:
        try:
            pipe.send("Browser.close")
            proc.wait(timeout=3)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    try:  # helpers (zygote, renderers) left in the group
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
