"""websocket-ingestion: receives Home Assistant events and writes them to InfluxDB (demo: counters only)."""
from __future__ import annotations

from homeiq_demo import make_app, setting

SERVICE = "websocket-ingestion"

app = make_app(SERVICE, "HomeIQ websocket ingestion")


@app.get("/api/v1/stats")
def stats() -> dict:
    return {
        "connected": True,
        "home_assistant_url": setting("HOME_ASSISTANT_URL"),
        "influxdb_url": setting("INFLUXDB_URL"),
        "events_received": 0,
        "events_written": 0,
    }
