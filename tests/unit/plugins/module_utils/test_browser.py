"""browser_check's reading of DevTools events and its judging of a page, without a browser;
the NUL-separated framing of the DevTools pipe over a real OS pipe; finding Chromium."""
from __future__ import annotations

import json
import os
import time

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _browser as B

URL = "http://127.0.0.1:3000/"


def feed(watch, *events, now=0.0):
    for method, params in events:
        watch.handle({"method": method, "params": params}, now=now)
    return watch


def request(rid, url, kind="Script", initiator="parser"):
    return ("Network.requestWillBeSent", {"requestId": rid, "request": {"url": url}, "type": kind,
                                          "initiator": {"type": initiator}})


def response(rid, url, status, kind="Script"):
    return ("Network.responseReceived", {"requestId": rid, "type": kind, "response": {"url": url, "status": status}})


def finished(rid):
    return ("Network.loadingFinished", {"requestId": rid})


def page_ok(watch):
    return feed(watch, request("1", URL, "Document", "other"), response("1", URL, 200, "Document"), finished("1"),
                ("Page.loadEventFired", {}))


def test_a_clean_page_passes():
    watch = page_ok(B.PageWatch(URL))
    result = watch.result(812.0)
    assert result["ok"] is True and result["status_code"] == 200 and result["element_found"] is None
    assert result["msg"] == "browser check of %s passed in 812 ms" % URL


def test_console_error_with_its_place():
    watch = page_ok(B.PageWatch(URL))
    args = [{"type": "string", "value": "metrics unavailable"}, {"type": "number", "value": 503}]
    feed(watch, ("Runtime.consoleAPICalled", {"type": "error", "args": args,
                                              "stackTrace": {"callFrames": [{"url": URL, "lineNumber": 11}]}}))
    feed(watch, ("Runtime.consoleAPICalled", {"type": "log", "args": [{"type": "string", "value": "fine"}]}))
    result = watch.result(100.0)
    assert result["ok"] is False
    assert result["console_errors"] == ["console.error: metrics unavailable 503 (%s:12)" % URL]
    assert result["msg"] == "browser check of %s failed: 1 console error: console.error: metrics unavailable 503 (%s:12)" % (URL, URL)


def test_uncaught_exception_and_error_log_entries():
    watch = page_ok(B.PageWatch(URL))
    feed(watch,
         ("Runtime.exceptionThrown", {"exceptionDetails": {"text": "Uncaught", "url": URL + "app.js", "lineNumber": 0,
                                                           "exception": {"description": "ReferenceError: nope is not defined\n    at app.js:1"}}}),
         ("Log.entryAdded", {"entry": {"level": "error", "source": "security", "text": "Refused to frame", "url": URL}}),
         ("Log.entryAdded", {"entry": {"level": "warning", "source": "javascript", "text": "deprecated"}}),
         # a network error log line duplicates a failed request, which is reported with its URL and status
         ("Log.entryAdded", {"entry": {"level": "error", "source": "network", "text": "Failed to load resource: 404"}}))
    assert watch.console_errors == ["Uncaught ReferenceError: nope is not defined (%sapp.js:1)" % URL,
                                    "Refused to frame (%s)" % URL]


def test_failed_sub_resources_and_network_errors():
    watch = page_ok(B.PageWatch(URL))
    feed(watch, request("2", URL + "logo.png", "Image"), response("2", URL + "logo.png", 404, "Image"), finished("2"),
         request("3", URL + "api/metrics", "Fetch", "script"),
         ("Network.loadingFailed", {"requestId": "3", "type": "Fetch", "errorText": "net::ERR_CONNECTION_REFUSED"}),
         request("4", URL + "app.js"), response("4", URL + "app.js", 200), finished("4"),
         request("5", URL + "gone.js"), ("Network.loadingFailed", {"requestId": "5", "errorText": "net::ERR_ABORTED", "canceled": True}))
    result = watch.result(50.0)
    assert result["failed_requests"] == [
        {"url": URL + "logo.png", "type": "Image", "status": 404, "error": "HTTP 404"},
        {"url": URL + "api/metrics", "type": "Fetch", "status": None, "error": "net::ERR_CONNECTION_REFUSED"}]
    assert "2 failed requests: %slogo.png HTTP 404; %sapi/metrics net::ERR_CONNECTION_REFUSED" % (URL, URL) in result["msg"]


def test_the_page_itself_failing():
    watch = feed(B.PageWatch(URL), request("1", URL, "Document", "other"), response("1", URL, 502, "Document"),
                 finished("1"), ("Page.loadEventFired", {}))
    assert watch.result(10.0)["failed_requests"][0]["status"] == 502 and watch.page_status == 502
    watch = B.PageWatch(URL)
    watch.navigation_failed("net::ERR_NAME_NOT_RESOLVED")
    assert watch.failed_requests == [{"url": URL, "type": "Document", "status": None, "error": "net::ERR_NAME_NOT_RESOLVED"}]


def test_the_browsers_own_favicon_request_does_not_count():
    watch = page_ok(B.PageWatch(URL))
    feed(watch, request("9", "http://127.0.0.1:3000/favicon.ico", "Other", "other"),
         response("9", "http://127.0.0.1:3000/favicon.ico", 404, "Other"), finished("9"))
    assert watch.result(10.0)["ok"] is True
    # a favicon the page itself asks for elsewhere is a request like any other
    feed(watch, request("10", URL + "img/favicon.ico", "Image"), response("10", URL + "img/favicon.ico", 404, "Image"))
    assert watch.result(10.0)["ok"] is False


def test_missing_element_and_timeout_messages():
    watch = page_ok(B.PageWatch(URL, wait_for="#metrics td"))
    assert watch.element_found is False
    result = watch.result(10000.0, timed_out=True)
    assert result["ok"] is False
    assert result["msg"] == "browser check of %s failed within 10000 ms: element #metrics td not found" % URL
    watch.element_found = True
    assert watch.result(900.0)["msg"] == "browser check of %s passed in 900 ms, #metrics td found" % URL
    unloaded = B.PageWatch(URL)
    assert unloaded.result(5000.0, timed_out=True)["msg"] == \
        "browser check of %s failed within 5000 ms: the page did not finish loading" % URL


def test_settled_waits_for_quiet_network_and_the_element():
    watch = B.PageWatch(URL, wait_for="#x")
    feed(watch, request("1", URL, "Document", "other"), response("1", URL, 200, "Document"), finished("1"),
         ("Page.loadEventFired", {}), request("2", URL + "api"), now=100.0)
    assert not watch.settled(now=110.0)  # a request in flight
    feed(watch, finished("2"), now=110.0)
    assert not watch.settled(now=110.0 + B.SETTLE_S / 2)  # not quiet long enough
    assert not watch.settled(now=111.0)  # the element is not there yet
    watch.element_found = True
    assert watch.settled(now=111.0)


def test_many_findings_are_cut_in_the_message():
    watch = page_ok(B.PageWatch(URL))
    for n in range(9):
        feed(watch, ("Runtime.consoleAPICalled", {"type": "error", "args": [{"type": "string", "value": "e%d" % n}]}))
    msg = watch.result(1.0)["msg"]
    assert msg.startswith("browser check of %s failed: 9 console errors: console.error: e0; " % URL)
    assert "e4" in msg and "e5" not in msg and "\n" not in msg


def test_pipe_framing_over_a_real_pipe():
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    try:
        pipe = B.DevToolsPipe(to_w, from_r)
        assert pipe.send("Page.enable", session_id="S1") == 1
        assert pipe.send("Runtime.evaluate", {"expression": "1"}) == 2
        raw = os.read(to_r, 4096)
        first, second, rest = raw.split(b"\0")
        assert rest == b""
        assert json.loads(first) == {"id": 1, "method": "Page.enable", "params": {}, "sessionId": "S1"}
        assert json.loads(second)["params"] == {"expression": "1"}
        # two messages in one write, one split over two writes
        os.write(from_w, b'{"id": 1, "result": {}}\0{"method": "Page.loadEv')
        os.write(from_w, b'entFired", "params": {}}\0')
        deadline = time.monotonic() + 5
        assert pipe.receive(deadline) == {"id": 1, "result": {}}
        assert pipe.receive(deadline) == {"method": "Page.loadEventFired", "params": {}}
        assert pipe.receive(time.monotonic() + 0.2) is None  # nothing more: None at the deadline
        os.close(from_w)
        from_w = None
        with pytest.raises(B.BrowserError, match="closed its DevTools pipe"):
            pipe.receive(time.monotonic() + 5)
    finally:
        for fd in (to_r, to_w, from_r, from_w):
            if fd is not None:
                os.close(fd)


def test_find_chromium(tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert B.find_chromium(str(fake)) == str(fake)
    assert B.find_chromium(None, environ={"HOMEIQ_CHROMIUM": str(fake)}) == str(fake)
    with pytest.raises(B.BrowserError) as err:
        B.find_chromium(str(tmp_path / "nothing"))
    assert str(err.value) == ("Chromium is not installed at %s: run make test-services (scripts/ensure-chromium), "
                              "or apt-get install chromium, or name the browser in executable" % (tmp_path / "nothing"))


def test_bad_input_is_one_line():
    with pytest.raises(B.BrowserError, match="url 'localhost:3000' must be an http://, https:// or file:// URL"):
        B.check_page("localhost:3000")
    with pytest.raises(B.BrowserError, match="timeout must be a positive number of seconds"):
        B.check_page(URL, timeout=0)


@pytest.mark.parametrize("script", [
    "#!/bin/sh\nexit 3\n",                               # exits at once: the pipe closes under the first command
    "#!/bin/sh\nprintf 'not json\\0' >&4\nsleep 5\n",    # answers what DevTools never sends
    "#!/bin/sh\nprintf '{\"id\": 1, \"result\": {}}\\0' >&4\nsleep 5\n",  # a createTarget answer without targetId
])
def test_a_browser_that_exits_or_talks_nonsense_is_one_line(tmp_path, script):
    """A real process on the other end of the DevTools pipe that is not a working Chromium."""
    fake = tmp_path / "chromium"
    fake.write_text(script)
    fake.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(B.BrowserError) as err:
        B.check_page(URL, timeout=10, executable=str(fake))
    assert "\n" not in str(err.value) and "Chromium" in str(err.value)
    assert time.monotonic() - started < 9


def test_a_password_in_a_url_is_never_reported():
    secret = "pw-" + os.urandom(4).hex()
    url = "http://viewer:%s@127.0.0.1:3000/" % secret
    watch = B.PageWatch(url)
    feed(watch, request("2", "http://viewer:%s@127.0.0.1:3000/logo.png" % secret, "Image"),
         response("2", "http://viewer:%s@127.0.0.1:3000/logo.png" % secret, 404, "Image"), finished("2"))
    watch.navigation_failed("net::ERR_CONNECTION_REFUSED")
    result = watch.result(10.0)
    assert secret not in json.dumps(result)
    assert result["url"] == "http://viewer:***@127.0.0.1:3000/"
    assert result["failed_requests"][0]["url"] == "http://viewer:***@127.0.0.1:3000/logo.png"
