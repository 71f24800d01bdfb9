"""ai-pattern-service: device synergies. Release `routebug` registers `/{synergy_id}` before
`/stats` (the HomeIQ route-order bug), so GET /api/v1/synergies/stats reaches get_synergy("stats")."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException

from homeiq_demo import make_app, release

SERVICE = "ai-pattern-service"
SYNERGIES = {
    "syn-001": {"id": "syn-001", "type": "device_pair", "devices": ["binary_sensor.front_door", "light.hallway"],
                "impact_score": 0.82, "confidence": 0.91},
    "syn-002": {"id": "syn-002", "type": "weather_context", "devices": ["climate.bedroom", "sensor.outdoor_temperature"],
                "impact_score": 0.64, "confidence": 0.77},
    "syn-003": {"id": "syn-003", "type": "energy_context", "devices": ["switch.garden_pump", "sensor.power_meter"],
                "impact_score": 0.58, "confidence": 0.7},
}

router = APIRouter(prefix="/api/v1/synergies", tags=["synergies"])


def get_synergy_stats() -> dict:
    by_type: dict[str, int] = {}
    for item in SYNERGIES.values():
        by_type[item["type"]] = by_type.get(item["type"], 0) + 1
    return {
        "total_synergies": len(SYNERGIES),
        "by_type": by_type,
        "avg_impact_score": round(sum(s["impact_score"] for s in SYNERGIES.values()) / len(SYNERGIES), 3),
        "release": release(),
    }


def get_synergy(synergy_id: str) -> dict:
    if synergy_id not in SYNERGIES:
        raise HTTPException(status_code=404, detail=f"Synergy {synergy_id} not found")
    return SYNERGIES[synergy_id]


def list_synergies() -> dict:
    return {"synergies": list(SYNERGIES.values()), "count": len(SYNERGIES)}


router.add_api_route("", list_synergies, methods=["GET"])
if release() == "routebug":
    # The bug: the parameterised route first shadows every fixed path after it.
    router.add_api_route("/{synergy_id}", get_synergy, methods=["GET"])
    router.add_api_route("/stats", get_synergy_stats, methods=["GET"])
else:
    router.add_api_route("/stats", get_synergy_stats, methods=["GET"])
    router.add_api_route("/{synergy_id}", get_synergy, methods=["GET"])

app = make_app(SERVICE, "HomeIQ AI pattern service")
app.include_router(router)
