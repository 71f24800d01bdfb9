"""Device endpoints shaped like HomeIQ's data-api: the parameterised route comes first."""
from fastapi import APIRouter, Query

router = APIRouter(tags=["Devices & Entities"])


@router.get("/api/devices")
async def list_devices(limit: int = Query(default=100, ge=1, le=1000)):
    return {"devices": [], "count": 0, "limit": limit}


@router.get("/api/devices/{device_id}")
async def get_device(device_id: str):
    return {"device_id": device_id}


@router.get("/api/devices/reliability")
async def get_device_reliability(period: str = "7d"):
    return {"period": period, "reliability_data": []}


@router.get("/api/devices/health-summary")
async def get_health_summary():
    return {"healthy": 0, "unhealthy": 0}


@router.get("/api/devices/maintenance-alerts")
async def get_maintenance_alerts():
    return {"alerts": []}


@router.get("/api/devices/power-anomalies")
async def get_power_anomalies():
    return {"anomalies": []}


@router.get("/api/devices/recommendations")
async def get_recommendations():
    return {"recommendations": []}


@router.get("/api/devices/compare")
async def compare_devices(ids: str = ""):
    return {"compared": ids.split(",") if ids else []}


@router.get("/api/devices/{device_id}/entities")
async def get_device_entities(device_id: str):
    return {"device_id": device_id, "entities": []}


@router.post("/api/devices/compare")
async def compare_devices_post():
    return {"compared": []}
