"""The introspection that route_order_check runs inside containers, against the newest FastAPI
(0.165, from requirements-dev.txt) and against Debian's 0.92 in the base image: both must list
the same routes in the same order as the static analysis of the same source."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fastapi
import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _routes, _routes_live, _routes_source

ROUTES = Path(__file__).parent / "routes"
FIXTURES = sorted(p.name for p in ROUTES.iterdir() if (p / "src" / "main.py").exists())
FRAMEWORK = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

# the runbook's one-liner, as it was run with docker exec
RUNBOOK_ONE_LINER = ("from src.main import app; from fastapi.routing import APIRoute; "
                     "print([r.path for r in app.routes if isinstance(r, APIRoute)])")


def introspect_here(fixture):
    proc = subprocess.run([sys.executable, "-c", _routes_live.INTROSPECT_SCRIPT, "src.main:app"], cwd=ROUTES / fixture,
                          capture_output=True, text=True, timeout=120, check=False)
    doc = _routes_live.parse_script_output(proc.stdout)
    assert doc and "routes" in doc, proc.stderr[-2000:]
    return doc


def introspect_in_base_image(fixture):
    proc = subprocess.run(["docker", "run", "--rm", "-e", "PYTHONDONTWRITEBYTECODE=1",
                           "-v", "%s:/srv:ro" % (ROUTES / fixture), "-w", "/srv", "homeiq/base:bookworm",
                           "python3", "-c", _routes_live.INTROSPECT_SCRIPT, "src.main:app"],
                          capture_output=True, text=True, timeout=180, check=False)
    doc = _routes_live.parse_script_output(proc.stdout)
    assert doc and "routes" in doc, proc.stderr[-2000:]
    return doc


def listing(doc):
    return [(r["path"], tuple(r["methods"] or ())) for r in doc["routes"] if r["path"] not in FRAMEWORK]


def static(fixture):
    routes = _routes_source.discover(str(ROUTES / fixture), app="src.main:app")[0]
    return [(r["path"], tuple(sorted(r["methods"]))) for r in routes]


def test_the_newest_fastapi_nests_included_routers():
    assert tuple(int(x) for x in fastapi.__version__.split(".")[:2]) >= (0, 165)
    proc = subprocess.run([sys.executable, "-c", RUNBOOK_ONE_LINER], cwd=ROUTES / "ai_pattern_service",
                          capture_output=True, text=True, timeout=120, check=False)
    # the one-liner sees the app's own /health, and none of the included synergy routes
    assert proc.stdout.strip() == "['/health']", proc.stderr


@pytest.mark.parametrize("fixture", FIXTURES)
def test_newest_fastapi_lists_what_the_source_says(fixture):
    doc = introspect_here(fixture)
    assert doc["versions"]["fastapi"] == fastapi.__version__
    assert listing(doc) == static(fixture)


def test_old_and_new_fastapi_agree_and_find_the_same_bugs():
    for fixture in ("ai_pattern_service", "multi_router_app", "convertor_app"):
        new, old = introspect_here(fixture), introspect_in_base_image(fixture)
        assert old["versions"]["fastapi"] == "0.92.0"
        assert listing(new) == listing(old) == static(fixture)
        judged = [[(s["path"], s["shadowed_by"]) for s in _routes.analyse(d["routes"], convertors=d["convertors"])["shadowed"]]
                  for d in (new, old)]
        assert judged[0] == judged[1] and judged[0]
