"""admin-api: service status and configuration; everything but /health and
/api/v1/real-time-metrics needs `Authorization: Bearer <ADMIN_API_TOKEN>`."""
from __future__ import annotations

from fastapi import Request

from homeiq_demo import bearer_token, make_app, release, setting, token_matches, unauthorized

SERVICE = "admin-api"
PUBLIC = frozenset({"/health", "/api/v1/real-time-metrics"})
SERVICES = (
    ("influxdb", 8086), ("websocket-ingestion", 8001), ("data-api", 8006), ("admin-api", 8004),
    ("ai-pattern-service", 8034), ("ai-automation-service", 8036), ("health-dashboard", 3000),
)

app = make_app(SERVICE, "HomeIQ admin API")


@app.middleware("http")
async def require_bearer(request: Request, call_next):
    if request.url.path not in PUBLIC and not token_matches(bearer_token(request), setting("ADMIN_API_TOKEN")):
        return unauthorized()
    return await call_next(request)


@app.get("/api/v1/real-time-metrics")
def real_time_metrics() -> dict:
    return {"events_per_minute": 12.0, "active_services": len(SERVICES), "error_rate": 0.0,
            "release": release()}


@app.get("/api/v1/services")
def services() -> dict:
    return {"services": [{"name": name, "port": port, "critical": port in (8086, 8001, 8006, 8004, 3000)}
                         for name, port in SERVICES]}


@app.get("/api/v1/config")
def config() -> dict:
    # Names and whether each is set; never the secret values.
    names = ("INFLUXDB_URL", "INFLUXDB_ORG", "INFLUXDB_BUCKET", "INFLUXDB_TOKEN",
             "HOME_ASSISTANT_URL", "HOME_ASSISTANT_TOKEN", "ADMIN_API_TOKEN")
    return {"release": release(), "settings": {name: bool(setting(name)) for name in names}}
