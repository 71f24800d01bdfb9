"""Discovery API: /discovery/devices/{device_id} registered before /discovery/devices/list."""
from fastapi import APIRouter

router = APIRouter(prefix="/discovery", tags=["discovery"])


@router.post("/scan")
async def start_scan():
    return {"started": True}


@router.get("/devices/{device_id}")
async def get_discovered_device(device_id: str):
    return {"device_id": device_id}


@router.get("/devices/list")
async def list_discovered_devices():
    return {"devices": []}
