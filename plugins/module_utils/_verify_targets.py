# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verify role's decisions: what to probe, and how the answers add up.

Private to the homeiq.deploy collection: not a public API, may change without notice.

``build_plan`` turns the role's catalogues (services, functional checks, nginx locations, auth
checks, browser checks) into health_probe targets, route_order_check arguments and browser_check
arguments, with the role's defaults. A bad entry is reported as one line naming the entry and
what to fix, never a traceback. The other functions judge the registered results (nginx dumps,
route checks, browser checks) and sum the verification up. Pure Python, so it is unit tested
without Ansible.
"""
from __future__ import annotations

import re

# Keys of a catalogue, functional, location entry that health_probe takes as they are.
PROBE_KEYS = ("critical", "method", "headers", "body", "expected_status", "max_latency_ms", "json_query",
              "json_equals", "body_contains", "container", "follow_redirects")
# Keys of a service's `routes` that route_order_check takes as they are (url and container get defaults).
ROUTE_KEYS = ("mode", "container", "app", "python", "workdir", "url", "headers", "path", "path_filter",
              "expect_before", "allow")
TARGET_KEYS = ("name", "port", "path", "url", "routes") + PROBE_KEYS
LOCATION_KEYS = ("name", "port", "path", "url") + PROBE_KEYS
NGINX_KEYS = ("name", "container", "port", "critical", "lint", "locations")
AUTH_KEYS = ("name", "port", "url", "protected", "public", "unauthorized_status", "critical", "max_latency_ms")
BROWSER_KEYS = ("name", "port", "path", "url", "wait_for", "critical", "timeout")
DEFAULT_BROWSER_TIMEOUT = 30.0
FIX = "fix inventories/<env>/group_vars/all/verify.yml"

# A proxy_pass whose upstream part holds a variable and which has a URI without one: nginx then
# sends every request to that URI as it is ("proxy returns root instead of target").
BAD_PROXY_PASS = re.compile(r'^(?:[A-Za-z]+://)?[^/$]*\$[A-Za-z0-9_{}]+[^/]*/[^$]*$')
PROXY_PASS = re.compile(r'(?m)^\s*proxy_pass\s+([^;]+);')
NGINX_ERROR_LINE = re.compile(r'(?m)^.*\[(?:emerg|alert|crit)\].*$')
NGINX_ERROR_PREFIX = re.compile(r'^.*?\[(emerg|alert|crit)\] (?:[0-9]+#[0-9]+: )?')


class VerifyInputError(Exception):
    """A catalogue entry the role cannot use; the message is one line naming it and what to fix."""


def _label(var, index, entry):
    name = entry.get("name") if isinstance(entry, dict) else None
    return "%s entry %s" % (var, name) if name else "%s[%d]" % (var, index)


def _entries(var, value):
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise VerifyInputError("%s must be a list of entries, not %s; %s" % (var, type(value).__name__, FIX))
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise VerifyInputError("%s[%d] must be a dict (name, port or url, ...), not %s; %s"
                                   % (var, index, type(entry).__name__, FIX))
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise VerifyInputError("%s[%d] has no name; give every entry a name; %s" % (var, index, FIX))
    return list(value)


def _known(label, entry, keys):
    unknown = sorted(str(k) for k in entry if k not in keys)
    if unknown:
        raise VerifyInputError("%s: unknown key%s %s (known: %s); %s" % (
            label, "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(keys), FIX))


def _port(label, value):
    if isinstance(value, bool):
        value = None
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 0 < value < 65536:
        raise VerifyInputError("%s: port %r is not a port number (1-65535); %s" % (label, value, FIX))
    return value


def _path(label, value, what="path"):
    if not isinstance(value, str) or not value.startswith("/"):
        raise VerifyInputError("%s: %s %r must start with /; %s" % (label, what, value, FIX))
    return value


def _url(label, value):
    if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value):
        raise VerifyInputError("%s: url %r must be a full http:// or https:// URL; %s" % (label, value, FIX))
    return value


def _given(entry, key):
    return entry.get(key) is not None


def entry_url(label, entry, scheme, host, default_path, port=None):
    """The URL of an entry: its url, or scheme://host:port + path (default_path without one)."""
    if _given(entry, "url"):
        if _given(entry, "port") or _given(entry, "path"):
            raise VerifyInputError("%s: give url or port and path, not both (url is the full URL); %s" % (label, FIX))
        return _url(label, entry["url"])
    port = entry.get("port") if _given(entry, "port") else port
    if port is None:
        raise VerifyInputError("%s needs a url or a port (probed on verify_host); %s" % (label, FIX))
    path = entry.get("path") if _given(entry, "path") else default_path
    if path is None:
        raise VerifyInputError("%s needs a path or a url; %s" % (label, FIX))
    return "%s://%s:%d%s" % (scheme, host, _port(label, port), _path(label, path))


def _base_url(url):
    match = re.match(r"^(https?://[^/]+)", url)
    return match.group(1) if match else url


def _probe_target(name, url, entry, defaults):
    target = dict(defaults)
    target.update((k, entry[k]) for k in PROBE_KEYS if _given(entry, k))
    target.update(name=name, url=url)
    return target


def _positive(label, key, value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number <= 0:
        raise VerifyInputError("%s: %s %r must be a positive number of seconds; %s" % (label, key, value, FIX))
    return number


def build_plan(services=None, functional_checks=None, nginx_checks=None, auth_checks=None, browser_checks=None,
               scheme="http", host="127.0.0.1", browser_host=None, max_latency_ms=500):
    """{probe: [health_probe targets], routes: [route checks], browser: [browser checks]}.

    Raises VerifyInputError naming the first bad entry."""
    if scheme not in ("http", "https"):
        raise VerifyInputError("verify_scheme %r must be http or https; %s" % (scheme, FIX))
    if not isinstance(host, str) or not host.strip():
        raise VerifyInputError("verify_host must be a host name or address; %s" % FIX)
    browser_host = browser_host or host
    latency = {"max_latency_ms": max_latency_ms}
    probe, routes, browser = [], [], []

    for var, entries, default_path in (("verify_services", services, "/health"),
                                       ("verify_functional_checks", functional_checks, "/")):
        for index, entry in enumerate(_entries(var, entries)):
            label = _label(var, index, entry)
            _known(label, entry, TARGET_KEYS)
            url = entry_url(label, entry, scheme, host, default_path)
            probe.append(_probe_target(entry["name"], url, entry, latency))
            if _given(entry, "routes"):
                routes.append(_route_check(label, entry, url))

    for index, nginx in enumerate(_entries("verify_nginx_checks", nginx_checks)):
        label = _label("verify_nginx_checks", index, nginx)
        _known(label, nginx, NGINX_KEYS)
        locations = nginx.get("locations") or []
        if not isinstance(locations, list):
            raise VerifyInputError("%s: locations must be a list of entries; %s" % (label, FIX))
        for lindex, location in enumerate(locations):
            if not isinstance(location, dict):
                raise VerifyInputError("%s: locations[%d] must be a dict (path, assertion, ...); %s" % (label, lindex, FIX))
            if not _given(location, "path") and not _given(location, "url"):
                raise VerifyInputError("%s: locations[%d] needs a path (or a url); %s" % (label, lindex, FIX))
            name = location.get("name") or "%s %s" % (nginx["name"], location.get("path") or location.get("url"))
            llabel = "%s location %s" % (label, name)
            _known(llabel, location, LOCATION_KEYS)
            if not _given(location, "url") and not _given(location, "port") and not _given(nginx, "port"):
                raise VerifyInputError("%s needs a port on its nginx entry (or a url); %s" % (llabel, FIX))
            url = entry_url(llabel, location, scheme, host, None, port=nginx.get("port"))
            defaults = {"critical": nginx.get("critical") if _given(nginx, "critical") else True}
            defaults.update(latency)
            probe.append(_probe_target(name, url, location, defaults))

    for index, auth in enumerate(_entries("verify_auth_checks", auth_checks)):
        label = _label("verify_auth_checks", index, auth)
        _known(label, auth, AUTH_KEYS)
        if _given(auth, "url"):
            if _given(auth, "port"):
                raise VerifyInputError("%s: give url or port, not both (url is the base URL); %s" % (label, FIX))
            base = _url(label, auth["url"]).rstrip("/")
        elif _given(auth, "port"):
            base = "%s://%s:%d" % (scheme, host, _port(label, auth["port"]))
        else:
            raise VerifyInputError("%s needs a url or a port (probed on verify_host); %s" % (label, FIX))
        common = {"critical": auth.get("critical") if _given(auth, "critical") else True,
                  "max_latency_ms": auth.get("max_latency_ms") if _given(auth, "max_latency_ms") else max_latency_ms}
        status = auth.get("unauthorized_status") if _given(auth, "unauthorized_status") else 401
        for key, suffix, expected in (("protected", "without token", [status]), ("public", "public", [200])):
            paths = auth.get(key) or []
            if not isinstance(paths, list):
                raise VerifyInputError("%s: %s must be a list of paths; %s" % (label, key, FIX))
            for path in paths:
                _path(label, path, what="%s path" % key)
                probe.append(dict(common, name="%s %s %s" % (auth["name"], path, suffix), url=base + path,
                                  expected_status=list(expected)))

    for index, check in enumerate(_entries("verify_browser_checks", browser_checks)):
        label = _label("verify_browser_checks", index, check)
        _known(label, check, BROWSER_KEYS)
        url = entry_url(label, check, scheme, browser_host, "/")
        item = {"name": check["name"], "url": url,
                "critical": bool(check["critical"]) if _given(check, "critical") else True,
                "timeout": _positive(label, "timeout", check["timeout"]) if _given(check, "timeout") else DEFAULT_BROWSER_TIMEOUT}
        if _given(check, "wait_for"):
            if not isinstance(check["wait_for"], str) or not check["wait_for"].strip():
                raise VerifyInputError("%s: wait_for must be a CSS selector such as '#metrics td'; %s" % (label, FIX))
            item["wait_for"] = check["wait_for"]
        browser.append(item)

    seen = {}
    for kind, items in (("probe", probe), ("browser", browser)):
        for item in items:
            if item["name"] in seen:
                raise VerifyInputError("two checks are named %r; names must be unique across the verify catalogues; %s"
                                       % (item["name"], FIX))
            seen[item["name"]] = kind
    return {"probe": probe, "routes": routes, "browser": browser}


def _route_check(label, entry, url):
    spec = entry["routes"]
    if not isinstance(spec, dict):
        raise VerifyInputError("%s: routes must be a dict of route_order_check options; %s" % (label, FIX))
    _known(label + " routes", spec, ROUTE_KEYS + ("critical",))
    check = {k: spec[k] for k in ROUTE_KEYS if _given(spec, k)}
    check.setdefault("mode", "container")
    if "container" not in check and _given(entry, "container"):
        check["container"] = entry["container"]
    check.setdefault("url", _base_url(url) + "/openapi.json")
    check.setdefault("expect_before", [])
    check.setdefault("allow", [])
    return {"name": entry["name"], "critical": bool(spec["critical"]) if _given(spec, "critical") else True,
            "args": check}


def plan_or_error(**kw):
    """build_plan, with a bad entry as {'error': line} instead of an exception (for the role)."""
    try:
        plan = build_plan(**kw)
    except VerifyInputError as exc:
        return {"error": str(exc), "probe": [], "routes": [], "browser": []}
    plan["error"] = ""
    return plan


def project_names(deploy_projects=None, project_name=""):
    """The compose projects whose containers are judged: every project of a stack, else the one named."""
    if deploy_projects:
        if not isinstance(deploy_projects, list):
            raise VerifyInputError("deploy_projects must be a list of projects with a name; %s" % FIX)
        names = []
        for index, project in enumerate(deploy_projects):
            name = project.get("name") if isinstance(project, dict) else None
            if not isinstance(name, str) or not name:
                raise VerifyInputError("deploy_projects[%d] has no name; give every project of the stack its compose project name"
                                       % index)
            if name not in names:
                names.append(name)
        return names
    return [project_name] if project_name else []


def nginx_findings(results):
    """One finding per `nginx -T` result (a registered loop result: rc, stdout, stderr, item)."""
    findings = []
    for result in results or []:
        check = result.get("item") or {}
        rc = result.get("rc")
        rc = 1 if rc is None else rc
        stderr = result.get("stderr") or ""
        error = ""
        if rc != 0:
            lines = NGINX_ERROR_LINE.findall(stderr)
            error = lines[0] if lines else (stderr.splitlines()[-1] if stderr.strip() else "") or result.get("msg") or "nginx -T failed"
            error = NGINX_ERROR_PREFIX.sub(lambda m: "nginx: [%s] " % m.group(1), error, count=1).strip()
        bad = []
        if check.get("lint", True) is not False:
            passes = [p.strip() for p in PROXY_PASS.findall(result.get("stdout") or "")]
            bad = [p for p in passes if BAD_PROXY_PASS.match(p)]
        findings.append({"name": check.get("name"), "container": check.get("container"),
                         "critical": check.get("critical", True) is not False,
                         "config_test_ok": rc == 0, "config_test_error": error,
                         "proxy_pass_with_variable_and_uri": bad, "ok": rc == 0 and not bad})
    return findings


def route_findings(results):
    """One finding per route_order_check result (loop items are the plan's route checks)."""
    findings = []
    for result in results or []:
        check = result.get("item") or {}
        ok = bool(result.get("ok"))
        findings.append({"name": check.get("name"), "critical": check.get("critical", True) is not False, "ok": ok,
                         "error": "" if ok else (result.get("msg") or "the route check failed"),
                         "shadowed": result.get("shadowed") or [], "out_of_order": result.get("out_of_order") or []})
    return findings


def browser_findings(results):
    """One finding per browser_check result (loop items are the plan's browser checks)."""
    findings = []
    for result in results or []:
        check = result.get("item") or {}
        ok = bool(result.get("ok")) and not result.get("failed")
        findings.append({"name": check.get("name"), "url": check.get("url"), "critical": check.get("critical", True) is not False,
                         "ok": ok, "error": "" if ok else (result.get("msg") or "the browser check failed"),
                         "console_errors": result.get("console_errors") or [],
                         "failed_requests": result.get("failed_requests") or [],
                         "element_found": result.get("element_found"), "elapsed_ms": result.get("elapsed_ms")})
    return findings


def _why(check, finding):
    if check in ("health", "routes", "browser"):
        return finding.get("error") or finding.get("status") or "failed"
    if not finding.get("config_test_ok"):
        return finding.get("config_test_error") or "nginx -T failed"
    return ("proxy_pass %s has a variable and a URI, so nginx sends every request to that one URI"
            % ", ".join(finding.get("proxy_pass_with_variable_and_uri") or []))


def outcome(health_services, routes=None, nginx=None, browser=None):
    """Failures, status and counts of the whole verification."""
    failures = []
    checks = ([("health", s) for s in health_services or [] if s.get("status") != "healthy"]
              + [("routes", f) for f in routes or [] if not f.get("ok")]
              + [("nginx", f) for f in nginx or [] if not f.get("ok")]
              + [("browser", f) for f in browser or [] if not f.get("ok")])
    for check, finding in checks:
        failures.append({"name": finding.get("name"), "check": check, "critical": bool(finding.get("critical")),
                         "why": _why(check, finding)})
    failed, critical = [], []
    for failure in failures:
        if failure["name"] not in failed:
            failed.append(failure["name"])
        if failure["critical"] and failure["name"] not in critical:
            critical.append(failure["name"])
    total = len(health_services or []) + len(routes or []) + len(nginx or []) + len(browser or [])
    status = "fail" if critical else ("degraded" if failed else "pass")
    return {"status": status, "failures": failures, "failed_services": failed, "critical_failed_services": critical,
            "passed_count": total - len(failures), "failed_count": len(failures),
            "lines": ["%s: %s" % (f["name"], f["why"]) for f in failures]}
