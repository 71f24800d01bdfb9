"""Event endpoints in the right order: fixed paths first."""
from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/events", tags=["events"])


@router.get("")
async def list_events(limit: int = 10):
    return {"events": [], "limit": limit}


@router.get("/stats")
async def event_stats(period: str = "1h"):
    return {"period": period, "total": 0}


@router.get("/{event_id}")
async def get_event(event_id: str):
    return {"event_id": event_id}
