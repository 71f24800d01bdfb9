from fastapi import APIRouter

from .rooms import router as rooms_router

router = APIRouter(prefix="/homes")


@router.get("/{home_id}")
async def get_home(home_id: str):
    return {"id": home_id}


router.include_router(rooms_router, prefix="/{home_id}")


@router.get("/summary")
async def homes_summary():
    return {"homes": 0}
