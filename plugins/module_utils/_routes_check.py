# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one call homeiq.deploy.route_order_check makes: read routes from the chosen source and judge them.

Private to the homeiq.deploy collection: not a public API, may change without notice.
"""
from __future__ import annotations

from ansible_collections.homeiq.deploy.plugins.module_utils import _routes, _routes_live, _routes_source
from ansible_collections.homeiq.deploy.plugins.module_utils._routes import RouteCheckError


def run(params, docker_client=None):
    """Returns (result, failure message or None); raises RouteCheckError for bad input."""
    mode = params.get("mode") or "container"
    notes = []
    convertors = {}
    extra = {"mode": mode}
    if mode == "container":
        if not params.get("container"):
            raise RouteCheckError("mode container needs container (the name of the service's container)")
        app = params.get("app") or "src.main:app"
        raw, convertors, versions = _routes_live.container_routes(
            params["container"], app=app, python=params.get("python") or "python3",
            workdir=params.get("workdir"), client=docker_client)
        extra["versions"] = versions
        where = "container %s (%s)" % (params["container"], app)
    elif mode == "openapi":
        if not params.get("url"):
            raise RouteCheckError("mode openapi needs url (the service's OpenAPI document, e.g. http://host:8006/openapi.json)")
        doc = _routes_live.fetch_openapi(params["url"], headers=params.get("headers"),
                                         timeout=params.get("timeout") or 10,
                                         validate_certs=params.get("validate_certs", True))
        raw = _routes_live.openapi_routes(doc)
        notes.append(_routes.OPENAPI_NOTE)
        where = params["url"]
    elif mode == "source":
        if not params.get("path"):
            raise RouteCheckError("mode source needs path (the service's Python source tree)")
        try:
            raw, src_notes = _routes_source.discover(params["path"], app=params.get("app"))
        except _routes_source.SourceError as exc:
            raise RouteCheckError(str(exc))
        notes.extend(src_notes)
        where = params["path"]
    else:
        raise RouteCheckError("mode must be container, openapi or source; got %s" % mode)
    if not raw:
        notes.append("no routes found in %s" % where)
    result = _routes.analyse(raw, path_filter=params.get("path_filter"), expect_before=params.get("expect_before"),
                             allow=params.get("allow"), convertors=convertors, notes=notes)
    result.update(extra)
    message = None if result["ok"] else _routes.failure_message(result, where)
    return result, message
