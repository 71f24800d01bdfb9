"""Status routes, mounted under /api by the app."""
from fastapi import APIRouter

router = APIRouter()


@router.get("/status")
async def status():
    return {"ok": True}
