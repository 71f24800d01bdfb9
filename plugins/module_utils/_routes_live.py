# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Route lists from running services for homeiq.deploy.route_order_check.

Private to the homeiq.deploy collection: not a public API, may change without notice.

Two sources: the application object inside its running container (imported by a small
script run with ``docker exec`` through the Docker SDK), and an OpenAPI document.
"""
from __future__ import annotations

import json

from ansible_collections.homeiq.deploy.plugins.module_utils._routes import RouteCheckError

MARKER = "HOMEIQ-ROUTES-JSON:"

# Runs inside the service's container with its own Python. It must work with every FastAPI
# and Starlette the services use: up to 0.164 FastAPI copies an included router's routes into
# app.routes; from 0.165 the included router stays a nested object (original_router with an
# include_context carrying the prefix), so the script walks nested routers. Plain Python 3.7+.
INTROSPECT_SCRIPT = r'''
import importlib, json, os, sys
MARK = "HOMEIQ-ROUTES-JSON:"
def out(doc):
    sys.stdout.write("\n" + MARK + json.dumps(doc) + "\n")
    sys.stdout.flush()
def main(spec):
    sys.path.insert(0, os.getcwd())
    modname, _, attr = spec.partition(":")
    try:
        obj = importlib.import_module(modname)
        for part in (attr or "app").split("."):
            obj = getattr(obj, part)
    except BaseException as exc:
        out({"error": "cannot import %s: %s: %s" % (spec, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")})
        return
    routes = getattr(obj, "routes", None)
    if routes is None and getattr(obj, "router", None) is not None:
        routes = obj.router.routes
    if routes is None:
        out({"error": "%s is not an ASGI application with routes (got %s)" % (spec, type(obj).__name__)})
        return
    try:
        from starlette.routing import Mount, Host
    except ImportError:
        Mount = Host = ()
    found = []
    def walk(items, prefix, depth):
        if depth > 50:
            return
        for r in items:
            original = getattr(r, "original_router", None)
            context = getattr(r, "include_context", None)
            if original is not None and context is not None:
                walk(getattr(original, "routes", []) or [], prefix + (getattr(context, "prefix", "") or ""), depth + 1)
                continue
            if Host and isinstance(r, Host):
                continue
            path = getattr(r, "path", None)
            if path is None:
                continue
            name = getattr(r, "name", None)
            if Mount and isinstance(r, Mount):
                found.append({"path": prefix + path.rstrip("/") + "/{path:path}", "methods": None,
                              "name": name, "kind": "mount"})
                continue
            cls = type(r).__name__
            if "WebSocket" in cls:
                found.append({"path": prefix + path, "methods": ["WEBSOCKET"], "name": name, "kind": "websocket"})
                continue
            methods = getattr(r, "methods", None)
            found.append({"path": prefix + path, "methods": sorted(methods) if methods else None,
                          "name": name, "kind": "http"})
    walk(routes, "", 0)
    convertors = {}
    try:
        from starlette.convertors import CONVERTOR_TYPES
        for key, conv in CONVERTOR_TYPES.items():
            convertors[key] = getattr(conv, "regex", None)
    except ImportError:
        pass
    versions = {}
    for lib in ("fastapi", "starlette"):
        try:
            versions[lib] = importlib.import_module(lib).__version__
        except Exception:
            pass
    out({"routes": found, "convertors": convertors, "versions": versions})
main(sys.argv[1] if len(sys.argv) > 1 else "src.main:app")
'''


def parse_script_output(text):
    """The JSON document after the marker (the app may print anything before it)."""
    for line in reversed((text or "").splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    return None


def docker_client():
    try:
        import docker  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise RouteCheckError("the Docker SDK for Python is required for mode container: pip install docker")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        raise RouteCheckError("cannot reach the Docker engine (%s); start it or set DOCKER_HOST" % _first_line(exc))
    return client


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def container_routes(container, app="src.main:app", python="python3", workdir=None, client=None):
    """Routes as registered inside a running container: (routes, convertors, versions)."""
    import docker.errors  # pylint: disable=import-outside-toplevel
    client = client or docker_client()
    try:
        ctr = client.containers.get(container)
    except docker.errors.NotFound:
        raise RouteCheckError("container %s not found; give the container's name as docker ps shows it" % container)
    except docker.errors.APIError as exc:
        raise RouteCheckError("cannot inspect container %s: %s" % (container, _first_line(exc)))
    status = ctr.attrs.get("State", {}).get("Status")
    if status != "running":
        raise RouteCheckError("container %s is %s, not running; start it before checking its routes" % (container, status))
    try:
        res = ctr.exec_run([python, "-c", INTROSPECT_SCRIPT, app], demux=True, workdir=workdir or None)
    except docker.errors.APIError as exc:
        raise RouteCheckError("docker exec in %s failed: %s" % (container, _first_line(exc)))
    stdout, stderr = res.output if isinstance(res.output, tuple) else (res.output, b"")
    stdout = (stdout or b"").decode("utf-8", "replace")
    stderr = (stderr or b"").decode("utf-8", "replace")
    try:
        doc = parse_script_output(stdout)
    except ValueError:
        doc = None
    if doc is None:
        detail = (stderr.strip().splitlines() or stdout.strip().splitlines() or ["no output"])[-1]
        raise RouteCheckError("route introspection in container %s failed (exit %s): %s; check that %s runs there"
                              % (container, res.exit_code, detail, python))
    if "error" in doc:
        raise RouteCheckError("in container %s: %s; set app to the import path of the FastAPI application "
                              "(and workdir if it is not the container's working directory)" % (container, doc["error"]))
    convertors = {k: v for k, v in (doc.get("convertors") or {}).items() if v}
    return doc["routes"], convertors, doc.get("versions") or {}


HTTP_VERBS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def openapi_routes(document):
    """Routes in document order from a parsed OpenAPI document (paths keep registration order)."""
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        raise RouteCheckError("the document has no paths object; is the url an OpenAPI document?")
    routes = []
    for path, item in document["paths"].items():
        if not isinstance(item, dict):
            continue
        methods = [m.upper() for m in item if m.lower() in HTTP_VERBS]
        names = [item[m].get("operationId") for m in item if m.lower() in HTTP_VERBS and isinstance(item[m], dict)]
        routes.append({"path": path, "methods": methods, "name": next((n for n in names if n), None)})
    return routes


def fetch_openapi(url, headers=None, timeout=10, validate_certs=True):
    import requests  # pylint: disable=import-outside-toplevel
    try:
        resp = requests.get(url, headers=headers or {}, timeout=timeout, verify=validate_certs)
    except requests.RequestException as exc:
        raise RouteCheckError("cannot fetch the OpenAPI document %s: %s" % (url, _first_line(exc)))
    if resp.status_code != 200:
        raise RouteCheckError("fetching the OpenAPI document %s gave HTTP %s; check url" % (url, resp.status_code))
    try:
        return resp.json()
    except ValueError:
        raise RouteCheckError("%s did not return JSON; url must point at the OpenAPI document (e.g. /openapi.json)" % url)
