"""Route lists from OpenAPI documents and from the introspection script's output."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _routes, _routes_live
from ansible_collections.homeiq.deploy.plugins.module_utils._routes import RouteCheckError


def test_openapi_paths_keep_document_order_and_list_methods():
    doc = {"openapi": "3.1.0", "paths": {
        "/api/v1/synergies/{synergy_id}": {"get": {"operationId": "get_synergy"}, "parameters": []},
        "/api/v1/synergies/stats": {"get": {"operationId": "synergy_stats"}},
        "/api/v1/synergies": {"post": {"operationId": "create"}, "get": {}},
    }}
    routes = _routes_live.openapi_routes(doc)
    assert routes == [
        {"path": "/api/v1/synergies/{synergy_id}", "methods": ["GET"], "name": "get_synergy"},
        {"path": "/api/v1/synergies/stats", "methods": ["GET"], "name": "synergy_stats"},
        {"path": "/api/v1/synergies", "methods": ["POST", "GET"], "name": "create"},
    ]
    res = _routes.analyse(routes, notes=[_routes.OPENAPI_NOTE])
    assert [s["path"] for s in res["shadowed"]] == ["/api/v1/synergies/stats"]
    assert "drop path convertors" in res["notes"][0]


def test_openapi_without_paths_is_refused():
    with pytest.raises(RouteCheckError, match="no paths object"):
        _routes_live.openapi_routes({"detail": "Not Found"})


def test_script_output_is_found_after_whatever_the_app_prints():
    text = "INFO starting\n{\"not\": \"this\"}\n%s{\"routes\": [], \"convertors\": {}}\n" % _routes_live.MARKER
    assert _routes_live.parse_script_output(text) == {"routes": [], "convertors": {}}
    assert _routes_live.parse_script_output("Traceback ...") is None


def run_script(tmp_path, files, spec="app_mod:app"):
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    proc = subprocess.run([sys.executable, "-c", _routes_live.INTROSPECT_SCRIPT, spec], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}, check=False)
    return _routes_live.parse_script_output(proc.stdout)


def test_script_walks_nested_routers_with_their_prefixes(tmp_path):
    # objects shaped like FastAPI >= 0.165: an included router stays nested, with its prefix in include_context
    doc = run_script(tmp_path, {"app_mod.py": """
        import sys
        sys.modules["starlette"] = None  # no Starlette here: the script must cope
        class Route:
            def __init__(self, path, methods, name):
                self.path, self.methods, self.name = path, set(methods), name
        class Ctx:
            def __init__(self, prefix):
                self.prefix = prefix
        class Router:
            def __init__(self, routes):
                self.routes = routes
        class Included:
            def __init__(self, router, prefix):
                self.original_router, self.include_context = router, Ctx(prefix)
        inner = Router([Route("/rooms/{room_id}", ["GET"], "room"), Route("/rooms/occupancy", ["GET"], "occ")])
        homes = Router([Route("/homes/{home_id}", ["GET"], "home"), Included(inner, "/homes/{home_id}")])
        class App:
            routes = [Route("/health", ["GET", "HEAD"], "health"), Included(homes, "/api/v1")]
        print("noise from the application's import")
        app = App()
    """})
    assert [(r["path"], r["methods"]) for r in doc["routes"]] == [
        ("/health", ["GET", "HEAD"]),
        ("/api/v1/homes/{home_id}", ["GET"]),
        ("/api/v1/homes/{home_id}/rooms/{room_id}", ["GET"]),
        ("/api/v1/homes/{home_id}/rooms/occupancy", ["GET"]),
    ]


def test_script_reports_import_errors_as_data(tmp_path):
    doc = run_script(tmp_path, {"app_mod.py": "raise RuntimeError('INFLUXDB_TOKEN is not set')\n"})
    assert doc == {"error": "cannot import app_mod:app: RuntimeError: INFLUXDB_TOKEN is not set"}
    doc = run_script(tmp_path, {"other.py": "app = 42\n"}, spec="other:app")
    assert "is not an ASGI application" in doc["error"]


def test_script_is_plain_json_safe():
    # the script travels as one argv element through docker exec
    assert "\x00" not in _routes_live.INTROSPECT_SCRIPT
    json.dumps(_routes_live.INTROSPECT_SCRIPT)
