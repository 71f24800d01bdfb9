"""influxdb: a small stand-in that speaks the parts of the InfluxDB 2 HTTP API HomeIQ uses.

GET /health and GET /ping answer like InfluxDB 2; everything under /api/v2 needs
`Authorization: Token <INFLUXDB_TOKEN>` and answers 401 {"code": "unauthorized"} otherwise.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from homeiq_demo import make_app, release, setting, token_matches

SERVICE = "influxdb"
VERSION = "v2.7.10"
ORG = setting("INFLUXDB_ORG", "homeiq")
BUCKET = setting("INFLUXDB_BUCKET", "home_assistant_events")
ORG_ID = "0a1b2c3d4e5f6a7b"
BUCKET_ID = "1b2c3d4e5f6a7b8c"

app = make_app(SERVICE, "InfluxDB (HomeIQ demo)", health=False)


class Unauthorized(Exception):
    pass


@app.exception_handler(Unauthorized)
def unauthorized_handler(request: Request, exc: Unauthorized) -> JSONResponse:
    return JSONResponse(status_code=401, content={"code": "unauthorized", "message": "unauthorized access"})


def require_token(request: Request) -> None:
    scheme, value = (request.headers.get("authorization", "").split(" ", 1) + [""])[:2]
    if scheme != "Token" or not token_matches(value.strip(), setting("INFLUXDB_TOKEN")):
        raise Unauthorized()


@app.get("/health")
def health() -> dict:
    return {
        "name": "influxdb",
        "message": "ready for queries and writes",
        "status": "pass",
        "checks": [],
        "version": VERSION,
        "commit": "homeiq-demo",
        "service": SERVICE,
        "release": release(),
    }


@app.get("/ping", status_code=204)
def ping() -> Response:
    return Response(status_code=204, headers={"X-Influxdb-Version": VERSION, "X-Influxdb-Build": "OSS"})


api = APIRouter(prefix="/api/v2", dependencies=[Depends(require_token)])


@api.get("/orgs")
def orgs() -> dict:
    return {"links": {"self": "/api/v2/orgs"},
            "orgs": [{"id": ORG_ID, "name": ORG, "description": "HomeIQ demo organisation"}]}


@api.get("/buckets")
def buckets() -> dict:
    return {"links": {"self": "/api/v2/buckets"},
            "buckets": [{"id": BUCKET_ID, "orgID": ORG_ID, "name": BUCKET, "type": "user",
                         "retentionRules": [{"type": "expire", "everySeconds": 2592000}]}]}


@api.post("/write", status_code=204)
def write(org: str, bucket: str) -> Response:
    if bucket != BUCKET:
        raise HTTPException(status_code=404, detail=f'bucket "{bucket}" not found')
    return Response(status_code=204)


@api.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(path: str) -> JSONResponse:
    return JSONResponse(status_code=404, content={"code": "not found", "message": "path not found"})


app.include_router(api)
