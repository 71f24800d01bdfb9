"""Everything reachable: fixed paths first, or convertors that exclude the fixed words."""
from uuid import UUID

from fastapi import APIRouter, FastAPI

synergies = APIRouter(prefix="/api/v1/synergies")


@synergies.get("/stats")
async def synergy_stats():
    return {"total": 0}


@synergies.get("/{synergy_id}")
async def get_synergy(synergy_id: str):
    return {"id": synergy_id}


items = APIRouter(prefix="/items")


@items.get("/{item_id:int}")
async def get_item(item_id: int):
    return {"id": item_id}


@items.get("/stats")
async def item_stats():
    return {"total": 0}


@items.get("/by-uuid/{key:uuid}")
async def by_uuid(key: UUID):
    return {"key": str(key)}


@items.get("/by-uuid/latest")
async def latest_uuid():
    return {"key": None}


app = FastAPI()


@app.get("/health")
async def health():
    return {"status": "healthy"}


app.include_router(synergies)
app.include_router(items)


@app.get("/files/{file_path:path}")
async def read_file(file_path: str):
    return {"path": file_path}
