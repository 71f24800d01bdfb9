"""data-api: Home Assistant events and their statistics (deterministic demo data).

Release `unhealthy` answers /health with 503, so the container's healthcheck fails.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi import HTTPException, Query
from fastapi.responses import JSONResponse

from homeiq_demo import health_payload, make_app, release

SERVICE = "data-api"
EVENT_TYPES = ("state_changed", "call_service", "automation_triggered", "device_registry_updated")
ENTITIES = ("light.living_room", "sensor.kitchen_temperature", "binary_sensor.front_door",
            "switch.garden_pump", "climate.bedroom", "sensor.power_meter")
PERIODS = {"15m": 15, "1h": 60, "6h": 360, "24h": 1440, "7d": 10080}
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)

app = make_app(SERVICE, "HomeIQ data API", health=False)


@app.get("/health")
def health():
    if release() == "unhealthy":
        body = health_payload(SERVICE, reason="event store unavailable")
        body["status"] = "unhealthy"
        return JSONResponse(status_code=503, content=body)
    return health_payload(SERVICE, dependencies={"influxdb": "configured"})


def event(index: int) -> dict:
    return {
        "id": f"evt-{index:06d}",
        "event_type": EVENT_TYPES[index % len(EVENT_TYPES)],
        "entity_id": ENTITIES[index % len(ENTITIES)],
        "timestamp": (EPOCH - timedelta(seconds=30 * index)).isoformat(),
        "state": "on" if index % 2 else "off",
        "source": "websocket-ingestion",
    }


@app.get("/api/v1/events")
def events(limit: int = Query(50, ge=1, le=1000)) -> list:
    return [event(i) for i in range(limit)]


@app.get("/api/v1/events/stats")
def event_stats(period: str = "1h") -> dict:
    if period not in PERIODS:
        raise HTTPException(status_code=400, detail=f"unknown period {period!r}; use one of {', '.join(PERIODS)}")
    minutes = PERIODS[period]
    total = minutes * 12
    by_type = {name: total // len(EVENT_TYPES) for name in EVENT_TYPES}
    return {
        "period": period,
        "total_events": total,
        "events_per_minute": round(total / minutes, 2),
        "event_types": by_type,
        "unique_entities": len(ENTITIES),
        "release": release(),
    }
