"""Shadowing logic: per method, segment by segment, honouring convertors."""
from __future__ import annotations

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _routes
from ansible_collections.homeiq.deploy.plugins.module_utils._routes import RouteCheckError


def covers(a, b, convertors=None):
    conv = dict(_routes.BUILTIN_CONVERTORS)
    conv.update(convertors or {})
    return _routes.path_covers(_routes.split_path(a), _routes.split_path(b), conv)


@pytest.mark.parametrize("earlier, later, expected", [
    # the runbook's bug: a string parameter takes every fixed word
    ("/api/v1/synergies/{synergy_id}", "/api/v1/synergies/stats", True),
    ("/api/devices/{device_id}", "/api/devices/health-summary", True),
    ("/api/devices/{device_id}", "/api/devices/{device_id}/entities", False),
    ("/api/devices/{device_id}", "/api/devices", False),
    ("/api/devices/{device_id}", "/api/devices/", False),
    # identical patterns, whatever the parameter is called
    ("/items/{a}", "/items/{b}", True),
    # convertors protect fixed words they cannot match...
    ("/items/{item_id:int}", "/items/stats", False),
    ("/items/{key:uuid}", "/items/latest", False),
    ("/items/{x:float}", "/items/stats", False),
    # ...but not words they do match
    ("/items/{item_id:int}", "/items/0", True),
    ("/items/{item_id:int}", "/items/42", True),
    ("/items/{x:float}", "/items/1.5", True),
    ("/items/{key:uuid}", "/items/123e4567-e89b-12d3-a456-426614174000", True),
    # convertor languages: str covers int, float covers int, int does not cover str
    ("/items/{name}", "/items/{item_id:int}", True),
    ("/items/{x:float}", "/items/{y:int}", True),
    ("/items/{y:int}", "/items/{x:float}", False),
    ("/items/{y:int}", "/items/{name}", False),
    ("/items/{key:uuid}", "/items/{name}", False),
    # {p:path} takes any number of segments
    ("/files/{p:path}", "/files/a/b/c", True),
    ("/files/{p:path}", "/files/{x}", True),
    ("/files/{p:path}", "/files/{rest:path}", True),
    ("/files/{p:path}", "/files", False),
    ("/files/{p:path}/meta", "/files/a/b/meta", True),
    ("/files/{p:path}/meta", "/files/a/b/data", False),
    ("/files/{name}", "/files/{p:path}", False),
    ("/{p:path}", "/anything/at/all", True),
    # parameters in the middle of a path
    ("/homes/{home_id}/rooms/{room_id}", "/homes/{home_id}/rooms/occupancy", True),
    ("/homes/{home_id}/rooms/{room_id}", "/homes/h1/rooms/occupancy", True),
    ("/homes/main/rooms/{room_id}", "/homes/{home_id}/rooms/occupancy", False),
    # segments mixing text and parameters
    ("/reports/{name}.json", "/reports/daily.json", True),
    ("/reports/{name}.json", "/reports/daily.csv", False),
    ("/reports/{name}", "/reports/{name}.json", True),
    ("/reports/{name}.json", "/reports/{name}", False),
    # literal against literal
    ("/health", "/health", True),
    ("/health", "/healthz", False),
    ("/", "/", True),
])
def test_path_covers(earlier, later, expected):
    assert covers(earlier, later) is expected


def test_custom_convertor_with_known_pattern():
    conv = {"slug": "[a-z-]+"}
    assert covers("/posts/{s:slug}", "/posts/latest-news", conv)
    assert not covers("/posts/{s:slug}", "/posts/42", conv)
    assert covers("/posts/{name}", "/posts/{s:slug}", conv)


def test_custom_convertor_with_unknown_pattern_is_not_assumed_to_match():
    assert not covers("/posts/{s:slug}", "/posts/latest")


def test_split_path_follows_starlette_syntax():
    segs = _routes.split_path("/a/{x:int}/{y}.json/")
    assert [s.is_literal for s in segs] == [True, False, False, True]
    assert segs[1].single == "int"
    assert segs[2].single is None and segs[2].parts[1].literal == ".json"
    assert segs[3].text == ""


def test_path_format_drops_convertors():
    assert _routes.path_format("/tasks/{task_id:int}/{p:path}") == "/tasks/{task_id}/{p}"


def r(path, methods=("GET",), **kw):
    return dict(kw, path=path, methods=list(methods) if methods is not None else None)


def test_shadowing_is_judged_per_method():
    routes = _routes.make_routes([
        r("/api/tasks/{task_id}", ["GET", "DELETE"]),
        r("/api/tasks/history", ["GET"]),
        r("/api/tasks/history", ["POST"]),
        r("/api/tasks/cleanup", ["DELETE", "PUT"]),
    ])
    found = _routes.find_shadowed(routes)
    assert [(s["path"], s["methods"], s["index"], s["shadowed_by_index"]) for s in found] == [
        ("/api/tasks/history", ["GET"], 1, 0),
        ("/api/tasks/cleanup", ["DELETE"], 3, 0),
    ]


def test_each_method_goes_to_the_first_route_that_takes_it():
    routes = _routes.make_routes([
        r("/a/{x}", ["GET"]),
        r("/{y}/b", ["POST"]),
        r("/a/b", ["GET", "POST"]),
    ])
    found = _routes.find_shadowed(routes)
    assert sorted((s["shadowed_by"], tuple(s["methods"])) for s in found) == [("/a/{x}", ("GET",)), ("/{y}/b", ("POST",))]


def test_route_registered_first_is_never_reported():
    routes = _routes.make_routes([r("/api/v1/synergies/stats"), r("/api/v1/synergies/{synergy_id}")])
    assert _routes.find_shadowed(routes) == []


def test_a_duplicate_route_is_shadowed_by_the_first():
    routes = _routes.make_routes([r("/health"), r("/health")])
    assert [s["index"] for s in _routes.find_shadowed(routes)] == [1]


def test_a_mount_takes_every_method_below_it_but_a_later_mount_takes_nothing_away():
    routes = _routes.make_routes([
        r("/static/{path:path}", None, kind="mount"),
        r("/static/app.js", ["GET", "HEAD"]),
        r("/api/{x}", ["GET"]),
        r("/api/{rest:path}", None, kind="mount"),
    ])
    found = _routes.find_shadowed(routes)
    assert [(s["path"], s["methods"]) for s in found] == [("/static/app.js", ["GET", "HEAD"])]


def test_routes_of_different_apps_do_not_shadow_each_other():
    routes = _routes.make_routes([r("/a/{x}", app="one"), r("/a/b", app="two")])
    assert _routes.find_shadowed(routes) == []


def test_expect_before_reports_wrong_order_and_missing_paths():
    routes = _routes.make_routes([r("/s/{synergy_id:int}"), r("/s/stats"), r("/t/history")])
    problems = _routes.check_expect_before(routes, [
        ["/s/stats", "/s/{synergy_id}"],   # matched with convertors removed
        ["/t/history", "/t/{task_id}"],
        ["/s/stats", "/t/history"],
    ])
    assert problems[0]["problem"] == "registered in the wrong order"
    assert (problems[0]["earlier_index"], problems[0]["later_index"]) == (1, 0)
    assert problems[1]["problem"] == "/t/{task_id} is not registered"
    assert len(problems) == 2


def test_expect_before_rejects_malformed_pairs():
    with pytest.raises(RouteCheckError, match="pairs"):
        _routes.check_expect_before([], [["/only-one"]])


def test_analyse_filters_reports_but_every_route_can_shadow():
    raw = [r("/api/{version}/synergies/stats"), r("/api/v1/synergies/stats"), r("/other/{x}"), r("/other/y")]
    res = _routes.analyse(raw, path_filter="^/api/v1/")
    assert [x["path"] for x in res["routes"]] == ["/api/v1/synergies/stats"]
    assert [(s["path"], s["shadowed_by"]) for s in res["shadowed"]] == [("/api/v1/synergies/stats", "/api/{version}/synergies/stats")]
    assert res["ok"] is False


def test_allow_accepts_by_path_or_method_and_path():
    raw = [r("/a/{x}", ["GET", "DELETE"]), r("/a/b", ["GET"]), r("/a/c", ["DELETE"])]
    res = _routes.analyse(raw, allow=["/a/b", "DELETE /a/c"])
    assert res["ok"] is True and res["shadowed"] == []
    assert [s["path"] for s in res["allowed"]] == ["/a/b", "/a/c"]
    res = _routes.analyse(raw, allow=["GET /a/c"])
    assert [s["path"] for s in res["shadowed"]] == ["/a/b", "/a/c"]


def test_bad_path_filter_is_one_line():
    with pytest.raises(RouteCheckError, match="path_filter is not a valid regular expression"):
        _routes.analyse([], path_filter="(")


def test_failure_message_names_routes_and_what_to_do():
    res = _routes.analyse([r("/s/{synergy_id}"), r("/s/stats")])
    msg = _routes.failure_message(res, "container x")
    assert msg.startswith("1 unreachable route in container x: GET /s/stats (shadowed by /s/{synergy_id})")
    assert "convertor" in msg and "\n" not in msg
