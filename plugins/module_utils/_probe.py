# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Concurrent HTTP health probing and judging for homeiq.deploy.health_probe.

Private to the homeiq.deploy collection: not a public API, may change without notice.

Probes run on a bounded thread pool; each worker thread has its own requests session (a
session is not safe to share between threads). Targets that are not yet healthy are retried
after ``retry_delay`` without holding a worker while they wait, and nothing new starts after
the overall deadline. Judging is a pure function so it can be tested without a network.
"""
from __future__ import annotations

import heapq
import json
import os
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

HEALTHY, UNHEALTHY, ERROR = "healthy", "unhealthy", "error"
PASS, DEGRADED, FAIL = "pass", "degraded", "fail"
DEFAULT_MAX_BODY = 1024 * 1024


class ProbeInputError(Exception):
    """Bad module input; the message is one line a person can act on."""


@dataclass
class Target:
    name: str
    url: str
    critical: bool = False
    method: str = "GET"
    headers: dict = field(default_factory=dict, repr=False)
    body: object = field(default=None, repr=False)
    expected_status: list = field(default_factory=lambda: [200])
    max_latency_ms: int = 500
    json_query: str | None = None
    json_equals: object = None
    body_contains: str | None = None
    container: str | None = None
    follow_redirects: bool = False
    compiled_query: object = field(default=None, repr=False)
    completed_ok: bool = False  # a one-shot container that exited with 0 counts as healthy
    fixed_error: str | None = None  # a target that can only fail (a compose project without containers)


@dataclass
class Response:
    status_code: int
    elapsed_ms: float
    body: bytes = b""
    truncated: bool = False
    location: str | None = None


@dataclass
class Outcome:
    status: str
    status_code: int | None = None
    response_time_ms: float | None = None
    error: str | None = None
    container_status: str | None = None


def redact_url(url):
    """The URL without a password in its user-info part."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = "%s:%d" % (host, parts.port)
    netloc = "%s:***@%s" % (parts.username or "", host)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _jmespath():
    try:
        import jmespath  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise ProbeInputError("json_query needs the jmespath Python library on the host running the probe: pip install jmespath")
    return jmespath


def build_targets(raw_targets, critical_only=False):
    """Targets from the module's `targets` option, validated."""
    targets, seen = [], set()
    for i, raw in enumerate(raw_targets or []):
        name = (raw.get("name") or "").strip()
        url = (raw.get("url") or "").strip()
        if not name:
            raise ProbeInputError("targets[%d] has no name; give every target a name" % i)
        if name in seen:
            raise ProbeInputError("target name %s is used twice; names identify services in the report" % name)
        seen.add(name)
        scheme = urlsplit(url).scheme.lower() if url else ""
        if scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ProbeInputError("target %s: url %r is not an http(s) URL" % (name, redact_url(url)))
        expected = raw.get("expected_status") or [200]
        try:
            expected = [int(s) for s in expected]
        except (TypeError, ValueError):
            raise ProbeInputError("target %s: expected_status must be a list of HTTP status codes" % name)
        if any(s < 100 or s > 599 for s in expected):
            raise ProbeInputError("target %s: expected_status %s holds a code outside 100-599" % (name, expected))
        max_latency = raw.get("max_latency_ms")
        max_latency = 500 if max_latency is None else int(max_latency)
        if max_latency <= 0:
            raise ProbeInputError("target %s: max_latency_ms must be positive" % name)
        t = Target(
            name=name, url=url, critical=bool(raw.get("critical")), method=(raw.get("method") or "GET").upper(),
            headers=dict(raw.get("headers") or {}), body=raw.get("body"), expected_status=expected,
            max_latency_ms=max_latency, json_query=raw.get("json_query") or None,
            json_equals=raw.get("json_equals"), body_contains=raw.get("body_contains"),
            container=raw.get("container") or None, follow_redirects=bool(raw.get("follow_redirects")),
        )
        if t.json_equals is not None and not t.json_query:
            raise ProbeInputError("target %s: json_equals needs json_query (the expression whose value it gives)" % name)
        if t.json_query:
            jmespath = _jmespath()
            try:
                t.compiled_query = jmespath.compile(t.json_query)
            except Exception as exc:  # jmespath raises several parse error types
                raise ProbeInputError("target %s: json_query %r is not valid JMESPath: %s"
                                      % (name, t.json_query, str(exc).splitlines()[0]))
        targets.append(t)
    if critical_only:
        targets = [t for t in targets if t.critical]
    return targets


def _jmes_truthy(value):
    # JMESPath truth: false, null, and empty strings, lists and objects are false; 0 is true
    return not (value is None or value is False or value in ("", [], {}))


def judge(target, response, container=None):
    """(status, error) for one attempt. `response` is a Response or None when the request
    failed; `container` is (ok, status text) or None when no container is named."""
    problems = []
    if response is not None:
        if response.status_code not in target.expected_status:
            msg = "status %d, expected %s" % (response.status_code, " or ".join(str(s) for s in target.expected_status))
            if response.location and 300 <= response.status_code < 400:
                msg += " (redirect to %s)" % response.location
            problems.append(msg)
        if response.elapsed_ms > target.max_latency_ms:
            problems.append("response took %d ms, more than max_latency_ms %d" % (round(response.elapsed_ms), target.max_latency_ms))
        needs_body = target.json_query or target.body_contains is not None
        if needs_body and response.truncated:
            problems.append("response body is larger than the %d bytes read; body assertions not evaluated"
                            % len(response.body))
        elif target.json_query:
            try:
                doc = json.loads(response.body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                snippet = response.body[:60].decode("utf-8", "replace").strip().replace("\n", " ")
                problems.append("response is not JSON (starts with %r), so json_query cannot be evaluated" % snippet)
            else:
                value = target.compiled_query.search(doc)
                if target.json_equals is not None:
                    if value != target.json_equals:
                        problems.append("json_query %s gave %s, expected %s" % (
                            target.json_query, json.dumps(value), json.dumps(target.json_equals)))
                elif not _jmes_truthy(value):
                    problems.append("json_query %s gave %s, expected a true value" % (target.json_query, json.dumps(value)))
        if target.body_contains is not None and not response.truncated:
            text = response.body.decode("utf-8", "replace")
            if target.body_contains not in text:
                problems.append("body does not contain %r" % target.body_contains)
    if container is not None and not container[0]:
        problems.append("container %s is %s" % (target.container, container[1]))
    if response is None:
        return ERROR, None
    if problems:
        return UNHEALTHY, "; ".join(problems)
    return HEALTHY, None


def overall(services):
    """pass, degraded (only non-critical ones failed) or fail (a critical one failed)."""
    if any(s["critical"] and s["status"] != HEALTHY for s in services):
        return FAIL
    if any(s["status"] != HEALTHY for s in services):
        return DEGRADED
    return PASS


def summarize(services):
    return {
        "total": len(services),
        "passed": sum(1 for s in services if s["status"] == HEALTHY),
        "failed": sum(1 for s in services if s["status"] != HEALTHY),
        "critical_passed": sum(1 for s in services if s["critical"] and s["status"] == HEALTHY),
        "critical_failed": sum(1 for s in services if s["critical"] and s["status"] != HEALTHY),
    }


class ContainerChecker:
    """Container state through the Docker SDK; calls are serialised (one client, one lock)."""

    def __init__(self, client_factory=None):
        self._factory = client_factory
        self._client = None
        self._error = None
        self._lock = threading.Lock()

    def _get_client(self):
        if self._client is None and self._error is None:
            try:
                if self._factory is not None:
                    self._client = self._factory()
                else:
                    import docker  # pylint: disable=import-outside-toplevel
                    self._client = docker.from_env()
                    self._client.ping()
            except ImportError:
                self._error = "unknown (the Docker SDK for Python is not installed)"
            except Exception as exc:
                self._error = "unknown (cannot reach the Docker engine: %s)" % _first_line(exc)
        return self._client

    def state(self, name, completed_ok=False):
        """(ok, status text): ok when the container runs and its healthcheck, if any, says healthy
        (with completed_ok, also when it ran once and exited with code 0)."""
        with self._lock:
            client = self._get_client()
            if client is None:
                return False, self._error
            try:
                ctr = self._find(client, name)
            except LookupError as exc:
                return False, str(exc)
            except Exception as exc:
                return False, "unknown (%s)" % _first_line(exc)
            state = ctr.attrs.get("State") or {}
        status = state.get("Status") or "unknown"
        health = (state.get("Health") or {}).get("Status")
        if status == "exited":
            code = state.get("ExitCode")
            return bool(completed_ok and code == 0), "exited (%s)" % code
        text = "%s (%s)" % (status, health) if health else status
        return status == "running" and health in (None, "healthy"), text

    def project_containers(self, project):
        """Names of the containers of a Compose project, sorted; raises LookupError when the engine cannot say."""
        with self._lock:
            client = self._get_client()
            if client is None:
                raise LookupError(self._error)
            try:
                found = client.containers.list(all=True, filters={"label": "com.docker.compose.project=%s" % project})
            except Exception as exc:
                raise LookupError("unknown (%s)" % _first_line(exc))
            return sorted(c.name for c in found)

    @staticmethod
    def _find(client, name):
        import docker.errors  # pylint: disable=import-outside-toplevel
        try:
            return client.containers.get(name)
        except docker.errors.NotFound:
            pass
        # a Compose service name: the one container of that service, if there is exactly one
        found = client.containers.list(all=True, filters={"label": "com.docker.compose.service=%s" % name})
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise LookupError("ambiguous (%d containers of compose service %s; name one)" % (len(found), name))
        raise LookupError("not found")


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _secs(value):
    value = round(float(value), 1)
    return "%ds" % value if value == int(value) else "%.1fs" % value


class HttpClient:
    """requests with one session per worker thread; reads at most max_body bytes."""

    def __init__(self, validate_certs=True, max_body=DEFAULT_MAX_BODY):
        import requests  # pylint: disable=import-outside-toplevel
        self._requests = requests
        self.validate_certs = validate_certs
        self.max_body = max_body
        self._local = threading.local()
        self._sessions = []
        self._lock = threading.Lock()

    def _session(self):
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._requests.Session()
            self._local.session = s
            with self._lock:
                self._sessions.append(s)
        return s

    def close(self):
        with self._lock:
            for s in self._sessions:
                s.close()
            self._sessions = []

    def request(self, target, timeout):
        """A Response, or raises RequestFailed with a one-line reason."""
        req = self._requests
        kwargs = {"headers": target.headers, "timeout": (min(timeout, 10.0), timeout), "verify": self.validate_certs,
                  "allow_redirects": target.follow_redirects, "stream": True}
        if isinstance(target.body, (dict, list)):
            kwargs["json"] = target.body
        elif target.body is not None:
            kwargs["data"] = str(target.body).encode("utf-8")
        start = time.perf_counter()
        try:
            resp = self._session().request(target.method, target.url, **kwargs)
            try:
                chunks, size, truncated = [], 0, False
                for chunk in resp.iter_content(chunk_size=65536):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > self.max_body:
                        truncated = True
                        break
                    if time.perf_counter() - start > timeout:
                        raise RequestFailed("timed out after %s reading the body" % _secs(timeout), time.perf_counter() - start)
                body = b"".join(chunks)[:self.max_body]
                location = resp.headers.get("Location")
            finally:
                resp.close()
        except RequestFailed:
            raise
        except req.exceptions.Timeout:
            raise RequestFailed("timed out after %s" % _secs(timeout), time.perf_counter() - start)
        except req.exceptions.SSLError as exc:
            raise RequestFailed("TLS error: %s" % _first_line(exc), time.perf_counter() - start)
        except req.exceptions.TooManyRedirects:
            raise RequestFailed("too many redirects", time.perf_counter() - start)
        except req.exceptions.ConnectionError as exc:
            text = str(exc)
            if "refused" in text.lower():
                reason = "connection refused"
            elif "Name or service not known" in text or "NameResolutionError" in text or "nodename nor servname" in text:
                reason = "host name does not resolve"
            elif "timed out" in text.lower():
                reason = "timed out after %s" % _secs(timeout)
            else:
                reason = "connection failed: %s" % _first_line(exc)
            raise RequestFailed(reason, time.perf_counter() - start)
        except req.exceptions.RequestException as exc:
            raise RequestFailed("request failed: %s" % _first_line(exc), time.perf_counter() - start)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        if location:
            location = urlsplit(location).path or location.split("?")[0]
        return Response(resp.status_code, elapsed_ms, body, truncated, location)


class RequestFailed(Exception):
    def __init__(self, reason, elapsed):
        super().__init__(reason)
        self.reason = reason
        self.elapsed_ms = elapsed * 1000.0


def project_targets(project, containers, critical=True, taken=(), critical_only=False):
    """One container-only target per container of a Compose project (a target that always fails
    when the project has none, or the engine cannot list them)."""
    if critical_only and not critical:
        return []
    try:
        names = containers.project_containers(project)
    except LookupError as exc:
        names, problem = [], str(exc)
    else:
        problem = None
    if not names:
        # judged like a container that does not exist, so it is reported and retried like one
        return [Target(name="compose project %s" % project, url=None, critical=critical,
                       fixed_error="no containers of compose project %s%s" % (project, ": " + problem if problem else ""))]
    out = []
    for name in names:
        if name in taken:
            raise ProbeInputError("target name %s is also a container of compose project %s; rename the target" % (name, project))
        out.append(Target(name=name, url=None, critical=critical, container=name, completed_ok=True))
    return out


def probe_once(target, timeout, http, containers):
    """One attempt at one target: an Outcome."""
    response, error, elapsed = None, None, None
    if target.url is not None:
        try:
            response = http.request(target, timeout)
            elapsed = response.elapsed_ms
        except RequestFailed as exc:
            error, elapsed = exc.reason, exc.elapsed_ms
    container = None
    if target.container:
        container = containers.state(target.container, completed_ok=target.completed_ok)
    if target.fixed_error:
        status, problem = UNHEALTHY, target.fixed_error
    elif target.url is None:  # a container of the project, judged by its state alone
        ok = container is not None and container[0]
        status, problem = (HEALTHY, None) if ok else (UNHEALTHY, "container %s is %s" % (target.container, container[1]))
    else:
        status, problem = judge(target, response, container)
    if status == ERROR:
        if container is not None and not container[0]:
            error = "%s; container %s is %s" % (error, target.container, container[1])
        problem = error
    return Outcome(
        status=status,
        status_code=response.status_code if response is not None else None,
        response_time_ms=round(elapsed, 1) if elapsed is not None else None,
        error=problem,
        container_status=container[1] if container is not None else None,
    )


def probe_all(targets, concurrency=16, timeout=10.0, retries=3, retry_delay=2.0, deadline=None,
              http=None, containers=None, clock=time.monotonic):
    """Probes every target, retrying the ones not yet healthy; returns the report's `services` list."""
    own_http = http is None
    http = http or HttpClient()
    containers = containers or ContainerChecker()
    start = clock()
    end = start + deadline if deadline else None
    last = {}
    attempts = {t.name: 0 for t in targets}
    notes = {}
    queue = [(start, i, t) for i, t in enumerate(targets)]
    heapq.heapify(queue)
    seq = len(targets)
    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            running = {}
            while queue or running:
                now = clock()
                while queue and queue[0][0] <= now and len(running) < concurrency:
                    t = heapq.heappop(queue)[2]
                    remaining = None if end is None else end - now
                    if remaining is not None and remaining <= 0.05:
                        notes[t.name] = "deadline of %s reached" % _secs(deadline)
                        continue
                    per_try = timeout if remaining is None else min(timeout, remaining)
                    running[pool.submit(probe_once, t, per_try, http, containers)] = t
                if running:
                    next_due = queue[0][0] - clock() if queue and len(running) < concurrency else None
                    done = wait(list(running), timeout=max(0.0, next_due) if next_due is not None else None,
                                return_when=FIRST_COMPLETED)[0]
                    for fut in done:
                        t = running.pop(fut)
                        attempts[t.name] += 1
                        try:
                            outcome = fut.result()
                        except Exception as exc:  # a bug must not lose the other results
                            outcome = Outcome(status=ERROR, error="probe failed: %s" % _first_line(exc))
                        last[t.name] = outcome
                        if outcome.status != HEALTHY and attempts[t.name] <= retries:
                            due = clock() + retry_delay
                            if end is None or due < end:
                                seq += 1
                                heapq.heappush(queue, (due, seq, t))
                            else:
                                notes[t.name] = "deadline of %s reached" % _secs(deadline)
                elif queue:
                    time.sleep(max(0.0, min(queue[0][0] - clock(), 1.0)))
    finally:
        if own_http:
            http.close()
    services = []
    for t in targets:
        o = last.get(t.name)
        if o is None:
            o = Outcome(status=ERROR, error="not probed: %s" % notes.get(t.name, "deadline reached"))
        elif o.status != HEALTHY and t.name in notes:
            o.error = "%s (%s)" % (o.error, notes[t.name]) if o.error else notes[t.name]
        services.append({
            "name": t.name,
            "url": redact_url(t.url) if t.url else None,
            "status": o.status,
            "status_code": o.status_code,
            "response_time_ms": o.response_time_ms,
            "critical": t.critical,
            "attempts": attempts[t.name],
            "error": o.error,
            "container_status": o.container_status,
        })
    return services


def timestamp():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_report(services):
    return {
        "timestamp": timestamp(),
        "overall_status": overall(services),
        "summary": summarize(services),
        "services": services,
    }


def write_report(path, report):
    """Writes the report as JSON and nothing else, atomically (temporary file, fsync, rename)."""
    path = os.path.abspath(os.path.expanduser(path))
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".health-report.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise ProbeInputError("cannot write the report to %s: %s" % (path, exc.strerror or exc))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ProbeInputError("cannot write the report to %s: %s" % (path, exc.strerror or exc))
    return path


def should_fail(overall_status, fail_on):
    if fail_on == "never":
        return False
    if fail_on == "any":
        return overall_status != PASS
    return overall_status == FAIL


def failure_message(report, path):
    bad = [s for s in report["services"] if s["status"] != HEALTHY]
    parts = ["%s%s: %s" % (s["name"], " (critical)" if s["critical"] else "", s["error"] or s["status"]) for s in bad[:8]]
    if len(bad) > 8:
        parts.append("and %d more" % (len(bad) - 8))
    where = "; report in %s" % path if path else ""
    return "health %s: %d of %d services unhealthy: %s%s" % (
        report["overall_status"], len(bad), report["summary"]["total"], "; ".join(parts), where)


def run(params, check_mode=False, http=None, containers=None):
    """The module's whole job: (result dict, failure message or None). Raises ProbeInputError."""
    for key, low in (("concurrency", 1), ("retries", 0)):
        if params.get(key) is not None and params[key] < low:
            raise ProbeInputError("%s must be at least %d" % (key, low))
    for key in ("timeout", "deadline"):
        if params.get(key) is not None and params[key] <= 0:
            raise ProbeInputError("%s must be a positive number of seconds" % key)
    if (params.get("retry_delay") or 0) < 0:
        raise ProbeInputError("retry_delay must not be negative")
    targets = build_targets(params.get("targets"), params.get("critical_only"))
    containers = containers or ContainerChecker()
    projects = params.get("compose_project") or []
    for project in [p for p in ([projects] if isinstance(projects, str) else projects) if p]:
        targets += project_targets(project, containers, critical=params.get("compose_project_critical", True),
                                   taken={t.name for t in targets}, critical_only=params.get("critical_only"))
    max_body = params.get("max_body_bytes") or DEFAULT_MAX_BODY
    started = time.monotonic()
    own = http is None
    http = http or HttpClient(validate_certs=params.get("validate_certs", True), max_body=max_body)
    try:
        services = probe_all(targets, concurrency=params.get("concurrency") or 16, timeout=float(params.get("timeout") or 10),
                             retries=params.get("retries", 3) if params.get("retries") is not None else 3,
                             retry_delay=float(params.get("retry_delay") if params.get("retry_delay") is not None else 2),
                             deadline=params.get("deadline"), http=http, containers=containers)
    finally:
        if own:
            http.close()
    report = build_report(services)
    result = dict(report)
    result["elapsed_ms"] = round((time.monotonic() - started) * 1000.0, 1)
    result["failed_services"] = [s["name"] for s in services if s["status"] != HEALTHY]
    result["critical_failed_services"] = [s["name"] for s in services if s["critical"] and s["status"] != HEALTHY]
    result["report_path"] = None
    path = params.get("report_path")
    if path and not check_mode:
        result["report_path"] = write_report(path, report)
    elif path:
        result["report_path"] = os.path.abspath(os.path.expanduser(path))
    result["report_written"] = bool(path and not check_mode)
    message = failure_message(report, result["report_path"] if result["report_written"] else None) \
        if should_fail(report["overall_status"], params.get("fail_on") or "critical") else None
    return result, message
