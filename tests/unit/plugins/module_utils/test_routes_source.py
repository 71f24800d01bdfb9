"""Static route discovery: prefixes, decorator order, include_router order, imports."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _routes, _routes_source
from ansible_collections.homeiq.deploy.plugins.module_utils._routes_source import SourceError

FIXTURES = Path(__file__).resolve().parents[3] / "integration" / "routes"


def tree(tmp_path, files):
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return str(tmp_path)


def paths(routes):
    return [(r["path"], tuple(sorted(r["methods"]))) for r in routes]


def shadowed(routes):
    return [(s["path"], s["shadowed_by"]) for s in _routes.analyse(routes)["shadowed"]]


def test_data_api_devices_bug_is_found_with_file_and_line():
    routes, notes = _routes_source.discover(str(FIXTURES / "data_api"), app="src.main:app")
    assert notes == []
    assert routes[0]["path"] == "/health"
    found = _routes.analyse(routes)["shadowed"]
    assert [s["path"].rsplit("/", 1)[1] for s in found] == [
        "reliability", "health-summary", "maintenance-alerts", "power-anomalies", "recommendations", "compare"]
    assert {s["shadowed_by"] for s in found} == {"/api/devices/{device_id}"}
    assert found[0]["source"].startswith("src/devices_endpoints.py:")
    # the POST route of the same path is reachable
    assert ("/api/devices/compare", ("POST",)) in paths(routes)
    assert all(s["methods"] == ["GET"] for s in found)


def test_include_prefix_and_router_prefix_are_joined_in_include_order():
    routes = _routes_source.discover(str(FIXTURES / "discovery_api"))[0]
    assert paths(routes) == [
        ("/api/status", ("GET",)),
        ("/discovery/scan", ("POST",)),
        ("/discovery/devices/{device_id}", ("GET",)),
        ("/discovery/devices/list", ("GET",)),
        ("/health", ("GET",)),
    ]
    assert shadowed(routes) == [("/discovery/devices/list", "/discovery/devices/{device_id}")]


def test_constant_prefix_and_api_route_methods():
    routes = _routes_source.discover(str(FIXTURES / "task_service"))[0]
    assert paths(routes) == [
        ("/api/tasks", ("GET",)),
        ("/api/tasks/{task_id}", ("DELETE", "GET")),
        ("/api/tasks/history", ("GET",)),
        ("/api/tasks/history", ("POST",)),
    ]
    assert shadowed(routes) == [("/api/tasks/history", "/api/tasks/{task_id}")]


def test_factory_loop_over_routers_and_nested_router_with_parameter_prefix():
    routes, notes = _routes_source.discover(str(FIXTURES / "multi_router_app"))
    assert notes == []
    assert [entry[0] for entry in paths(routes)] == [
        "/api/v1/alerts/active",
        "/api/v1/alerts/{alert_id}",
        "/api/v1/homes/{home_id}",
        "/api/v1/homes/{home_id}/rooms/{room_id}",
        "/api/v1/homes/{home_id}/rooms/occupancy",
        "/api/v1/homes/summary",
        "/health",
    ]
    assert {r["app"] for r in routes} == {"src.main:app"}
    assert shadowed(routes) == [
        ("/api/v1/homes/{home_id}/rooms/occupancy", "/api/v1/homes/{home_id}/rooms/{room_id}"),
        ("/api/v1/homes/summary", "/api/v1/homes/{home_id}"),
    ]


def test_correct_app_has_nothing_shadowed():
    routes = _routes_source.discover(str(FIXTURES / "correct_app"))[0]
    assert len(routes) == 8
    res = _routes.analyse(routes)
    assert res["ok"] is True


def test_stacked_decorators_apply_bottom_up(tmp_path):
    root = tree(tmp_path, {"main.py": """
        from fastapi import FastAPI
        app = FastAPI()

        @app.get("/a/stats")
        @app.get("/a/{x}")
        def both(x: str = ""):
            return {}
    """})
    routes = _routes_source.discover(root)[0]
    assert [r["path"] for r in routes] == ["/a/{x}", "/a/stats"]
    assert shadowed(routes) == [("/a/stats", "/a/{x}")]


def test_relative_imports_reexports_and_module_attribute_access(tmp_path):
    root = tree(tmp_path, {
        "svc/__init__.py": "",
        "svc/app/__init__.py": "",
        "svc/app/main.py": """
            import fastapi
            from ..api import routers
            from ..api.consts import PREFIX
            app = fastapi.FastAPI()
            app.include_router(routers.synergies_router, prefix=PREFIX)
        """,
        "svc/api/__init__.py": "",
        "svc/api/consts.py": "PREFIX = '/api/v1'\n",
        "svc/api/routers.py": "from .synergies import router as synergies_router\n",
        "svc/api/synergies.py": """
            from fastapi import APIRouter as Router
            router = Router(prefix=f"/synergies")

            @router.get("/{synergy_id}")
            def one(synergy_id: str):
                return {}

            router.add_api_route("/stats", lambda: {}, methods=["GET"])
        """,
    })
    routes, notes = _routes_source.discover(root, app="svc.app.main:app")
    assert notes == []
    assert [r["path"] for r in routes] == ["/api/v1/synergies/{synergy_id}", "/api/v1/synergies/stats"]
    assert shadowed(routes) == [("/api/v1/synergies/stats", "/api/v1/synergies/{synergy_id}")]


def test_app_option_matches_a_module_deeper_in_the_tree(tmp_path):
    root = tree(tmp_path, {"services/data-api/src/main.py": """
        from fastapi import FastAPI
        app = FastAPI()
        @app.get("/health")
        def h():
            return {}
    """})
    routes = _routes_source.discover(root, app="src.main:app")[0]
    assert [r["path"] for r in routes] == ["/health"]


def test_router_defined_on_self_and_unresolvable_include_is_still_checked(tmp_path):
    root = tree(tmp_path, {
        "endpoints.py": """
            from fastapi import APIRouter

            class DeviceEndpoints:
                def __init__(self):
                    self.router = APIRouter(prefix="/api/devices")
                    self._routes()

                def _routes(self):
                    @self.router.get("/{device_id}")
                    async def get_device(device_id: str):
                        return {}

                    @self.router.get("/compare")
                    async def compare():
                        return {}
        """,
        "main.py": """
            from fastapi import FastAPI
            from endpoints import DeviceEndpoints
            app = FastAPI()
            app.include_router(DeviceEndpoints().router)
        """,
    })
    routes, notes = _routes_source.discover(root)
    assert any("cannot be resolved statically" in n and "main.py:5" in n for n in notes)
    assert {r["app"] for r in routes} == {"router endpoints:self.router"}
    assert shadowed(routes) == [("/api/devices/compare", "/api/devices/{device_id}")]


def test_dynamic_paths_and_unparsable_files_are_reported_as_notes(tmp_path):
    root = tree(tmp_path, {
        "main.py": """
            import os
            from fastapi import FastAPI
            app = FastAPI()

            @app.get(os.environ["HEALTH_PATH"])
            def h():
                return {}

            @app.get("/ok")
            def ok():
                return {}
        """,
        "broken.py": "def (:\n",
    })
    routes, notes = _routes_source.discover(root)
    assert [r["path"] for r in routes] == ["/ok"]
    assert any("broken.py was skipped" in n for n in notes)
    assert any("main.py:6: a route path cannot be determined" in n for n in notes)


def test_include_inside_if_and_try_blocks_counts_in_order(tmp_path):
    root = tree(tmp_path, {"main.py": """
        from fastapi import APIRouter, FastAPI
        a = APIRouter(prefix="/x")
        b = APIRouter(prefix="/x")

        @a.get("/{anything}")
        def one(anything: str):
            return {}

        @b.get("/fixed")
        def two():
            return {}

        app = FastAPI()
        if True:
            app.include_router(a)
        try:
            app.include_router(b)
        except Exception:
            pass
    """})
    routes = _routes_source.discover(root)[0]
    assert shadowed(routes) == [("/x/fixed", "/x/{anything}")]


def test_tests_folders_are_skipped(tmp_path):
    root = tree(tmp_path, {
        "main.py": "from fastapi import FastAPI\napp = FastAPI()\n",
        "tests/test_main.py": "from fastapi import FastAPI\napp = FastAPI()\n@app.get('/x')\ndef x():\n    return {}\n",
    })
    routes = _routes_source.discover(root)[0]
    assert routes == []


def test_unknown_app_lists_the_apps_found():
    with pytest.raises(SourceError, match=r"app src.server:app not found .*FastAPI apps found: src.main:app"):
        _routes_source.discover(str(FIXTURES / "ai_pattern_service"), app="src.server:app")


def test_missing_path_and_empty_tree(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        _routes_source.discover(str(tmp_path / "nope"))
    with pytest.raises(SourceError, match="no Python files"):
        _routes_source.discover(str(tmp_path))


def test_the_two_sides_of_an_if_do_not_shadow_each_other(tmp_path):
    root = tree(tmp_path, {"app.py": """
        import os
        from fastapi import APIRouter, FastAPI
        router = APIRouter(prefix="/api/v1/synergies")
        if os.environ.get("RELEASE") == "routebug":
            router.add_api_route("/{synergy_id}", lambda synergy_id: {}, methods=["GET"])
            router.add_api_route("/stats", lambda: {}, methods=["GET"])
        else:
            router.add_api_route("/stats", lambda: {}, methods=["GET"])
            router.add_api_route("/{synergy_id}", lambda synergy_id: {}, methods=["GET"])
        app = FastAPI()
        app.include_router(router)
    """})
    routes = _routes_source.discover(root)[0]
    found = _routes.analyse(routes)["shadowed"]
    # only the buggy side is reported, with the condition it depends on
    assert [(s["path"], s["index"], s["shadowed_by_index"]) for s in found] == [("/api/v1/synergies/stats", 1, 0)]
    assert found[0]["conditions"] == ["first branch of the if at app.py:5"]


def test_each_factory_call_builds_its_own_app_and_constant_flags_are_honoured(tmp_path):
    root = tree(tmp_path, {
        "common.py": """
            from fastapi import FastAPI

            def make_app(name, health=True):
                app = FastAPI(title=name)
                if health:
                    @app.get("/health")
                    def get_health():
                        return {}
                return app
        """,
        "one.py": """
            from common import make_app
            app = make_app("one", health=False)

            @app.get("/health")
            def own_health():
                return {}
        """,
        "two.py": """
            from common import make_app
            app = make_app("two")

            @app.get("/items/{item_id}")
            def item(item_id: str):
                return {}
        """,
    })
    routes = _routes_source.discover(root)[0]
    by_app = {}
    for r in routes:
        by_app.setdefault(r["app"], []).append((r["path"], r["name"]))
    assert by_app == {"one:app": [("/health", "own_health")],
                      "two:app": [("/health", "get_health"), ("/items/{item_id}", "item")]}
    assert _routes.analyse(routes)["ok"] is True
