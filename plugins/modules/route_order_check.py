#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: route_order_check
short_description: Find FastAPI routes that an earlier parameterised route makes unreachable
version_added: 0.1.0
description:
  - Starlette matches routes in registration order and the first route whose path and method
    match wins. A route such as C(/api/v1/synergies/stats) registered after
    C(/api/v1/synergies/{synergy_id}) is never reached for C(GET); the request lands in the
    wrong handler, which answers 404 or 422.
  - The type annotation of a path parameter does not protect a later route (Starlette matches
    C({synergy_id}) as a string before FastAPI validates it). Only a path convertor such as
    C({synergy_id:int}) does, and the check honours convertors (C(str), C(int), C(float),
    C(uuid), C(path), and custom ones whose pattern the application reports).
  - Shadowing is judged per HTTP method and segment by segment; C({x:path}) matches any number
    of segments. A route is reported when every URL it matches is taken by one earlier route
    with the same method.
  - Routes come from the running application inside its container (O(mode=container), as the
    runbook's C(docker exec ... python3 -c) did, but walking the nested routers FastAPI 0.165
    and later keep in C(app.routes)), from an OpenAPI document (O(mode=openapi)), or from a
    static analysis of the source tree (O(mode=source)).
  - Fails when a route is shadowed (and not listed in O(allow)) or an O(expect_before) pair is
    out of order; the failure message names the routes.
author:
  - HomeIQ maintainers (!UNKNOWN)
requirements:
  - docker (the Python SDK) for O(mode=container)
  - requests for O(mode=openapi)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The check only reads; it runs the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: Never changes anything; C(changed) is always false.
options:
  mode:
    description:
      - Where the routes come from.
      - V(container) imports the application inside its running container with C(docker exec)
        and lists the routes exactly as registered, convertors included.
      - V(openapi) reads an OpenAPI document whose C(paths) keep the registration order.
        OpenAPI documents drop path convertors (C({task_id:int}) appears as C({task_id})), so a
        route protected by a convertor is reported as shadowed; routes hidden from the schema
        are not seen. Confirm findings with V(container) or V(source).
      - V(source) analyses the Python source tree at O(path) without running it.
    type: str
    choices: [container, openapi, source]
    default: container
  container:
    description: Name or ID of the running container. Required with O(mode=container).
    type: str
  app:
    description:
      - Import path C(module:variable) of the FastAPI application.
      - With O(mode=container) the default is V(src.main:app).
      - With O(mode=source) the default is every FastAPI application found in the tree, plus
        every router that no application can be shown to include (each judged on its own).
    type: str
  python:
    description: Python interpreter inside the container.
    type: str
    default: python3
  workdir:
    description: Working directory for the import inside the container; default the container's own.
    type: str
  url:
    description: URL of the OpenAPI document, for example V(http://127.0.0.1:8006/openapi.json). Required with O(mode=openapi).
    type: str
  headers:
    description: HTTP headers sent when fetching O(url), for example an C(Authorization) token. Never shown in output.
    type: dict
  validate_certs:
    description: Verify the TLS certificate of O(url).
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the OpenAPI document.
    type: int
    default: 10
  path:
    description:
      - Root of the Python source tree (or one file). Required with O(mode=source).
      - Directories named C(tests), C(test), virtualenvs and C(test_*.py) files are skipped.
    type: path
  path_filter:
    description:
      - Regular expression (searched, not anchored) selecting the routes to report.
      - Every route still counts as a possible shadower; only the reported routes are filtered.
    type: str
  expect_before:
    description:
      - Pairs C([earlier, later]) of paths that must be registered in that order.
      - A pair whose paths are not registered is reported too.
      - A path matches a route exactly or with convertors removed.
    type: list
    elements: list
    default: []
  allow:
    description:
      - Shadowed routes to accept, as a path (V(/api/legacy/latest)) or method and path
        (V(GET /api/legacy/latest)). Accepted ones are returned in RV(allowed).
    type: list
    elements: str
    default: []
notes:
  - Importing the application in its container runs its module-level code, as the
    application's own start does; startup events are not run.
  - Static analysis resolves C(APIRouter(prefix=...)), decorators (stacked decorators apply
    bottom-up), C(add_api_route), C(include_router(..., prefix=...)) on apps and routers,
    imports and re-exports, string constants, application factories and loops over literal
    lists of routers. What it cannot resolve is listed in RV(notes).
seealso:
  - module: homeiq.deploy.health_probe
"""

EXAMPLES = r"""
- name: Check the routes of the running ai-pattern-service
  homeiq.deploy.route_order_check:
    container: homeiq-ai-pattern-service
    app: src.main:app

- name: Check a service's source tree before building it
  homeiq.deploy.route_order_check:
    mode: source
    path: "{{ homeiq_src }}/services/data-api/src"
    expect_before:
      - [/api/devices/reliability, "/api/devices/{device_id}"]

- name: Check through the OpenAPI document (convertors are not visible there)
  homeiq.deploy.route_order_check:
    mode: openapi
    url: http://127.0.0.1:8034/openapi.json
    path_filter: ^/api/v1/synergies
    allow:
      - GET /api/v1/synergies/legacy
"""

RETURN = r"""
ok:
  description: True when no route is shadowed and every O(expect_before) pair is in order.
  returned: always
  type: bool
  sample: false
mode:
  description: The mode used.
  returned: always
  type: str
  sample: container
routes:
  description: Routes in registration order (filtered by O(path_filter)).
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: Position in registration order (0 is matched first).
      type: int
    path:
      description: Full path with prefixes and convertors.
      type: str
    methods:
      description: HTTP methods; V(*) for a mount, which takes every method; V(WEBSOCKET) for websocket routes.
      type: list
      elements: str
    name:
      description: Endpoint name (function name, or operationId in O(mode=openapi)).
      type: str
    source:
      description: File and line of the registration (O(mode=source) only).
      type: str
    app:
      description: Which application or stand-alone router the route belongs to (O(mode=source) only).
      type: str
  sample:
    - {index: 5, path: "/api/v1/synergies/{synergy_id}", methods: [GET], name: get_synergy}
    - {index: 6, path: /api/v1/synergies/stats, methods: [GET], name: synergy_stats}
shadowed:
  description: Routes that can never be reached for the listed methods, each with the route that takes their requests.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The unreachable route.
      type: str
    methods:
      description: Methods for which it is unreachable.
      type: list
      elements: str
    index:
      description: Its registration index.
      type: int
    name:
      description: Its endpoint name.
      type: str
    shadowed_by:
      description: Path of the earlier route that matches its requests first.
      type: str
    shadowed_by_index:
      description: Registration index of that route.
      type: int
    shadowed_by_name:
      description: Endpoint name of that route.
      type: str
  sample:
    - path: /api/v1/synergies/stats
      methods: [GET]
      index: 6
      name: synergy_stats
      shadowed_by: "/api/v1/synergies/{synergy_id}"
      shadowed_by_index: 5
      shadowed_by_name: get_synergy
allowed:
  description: Shadowed routes accepted through O(allow); same shape as RV(shadowed).
  returned: always
  type: list
  elements: dict
out_of_order:
  description: O(expect_before) pairs that failed, with both indexes and the problem.
  returned: always
  type: list
  elements: dict
  sample:
    - {earlier: /api/v1/synergies/stats, later: "/api/v1/synergies/{synergy_id}", earlier_index: 6, later_index: 5,
       problem: registered in the wrong order}
notes:
  description: Limits of this run, for example that OpenAPI drops convertors, or source constructs that could not be resolved.
  returned: always
  type: list
  elements: str
versions:
  description: FastAPI and Starlette versions inside the container.
  returned: when O(mode=container)
  type: dict
  sample: {fastapi: 0.92.0, starlette: 0.26.1}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homeiq.deploy.plugins.module_utils._routes import RouteCheckError
from ansible_collections.homeiq.deploy.plugins.module_utils._routes_check import run


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mode=dict(type="str", default="container", choices=["container", "openapi", "source"]),
            container=dict(type="str"),
            app=dict(type="str"),
            python=dict(type="str", default="python3"),
            workdir=dict(type="str"),
            url=dict(type="str"),
            headers=dict(type="dict", no_log=True),
            validate_certs=dict(type="bool", default=True),
            timeout=dict(type="int", default=10),
            path=dict(type="path"),
            path_filter=dict(type="str"),
            expect_before=dict(type="list", elements="list", default=[]),
            allow=dict(type="list", elements="str", default=[]),
        ),
        required_if=[
            ("mode", "container", ("container",)),
            ("mode", "openapi", ("url",)),
            ("mode", "source", ("path",)),
        ],
        supports_check_mode=True,
    )
    try:
        result, failure = run(module.params)
    except RouteCheckError as exc:
        module.fail_json(msg=str(exc))
    if failure:
        module.fail_json(msg=failure, changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
