"""Synergy routes as ai-pattern-service registered them: /{synergy_id} before /stats."""
from fastapi import APIRouter, HTTPException

router = APIRouter(prefix="/api/v1/synergies", tags=["synergies"])


@router.get("")
async def list_synergies(limit: int = 10):
    return {"synergies": [], "limit": limit}


@router.get("/{synergy_id}")
async def get_synergy(synergy_id: str):
    raise HTTPException(status_code=404, detail="synergy %s not found" % synergy_id)


@router.get("/stats")
async def synergy_stats():
    return {"total": 0, "by_type": {}}
