from fastapi import APIRouter

router = APIRouter(prefix="/rooms")


@router.get("/{room_id}")
async def get_room(home_id: str, room_id: str):
    return {"home": home_id, "room": room_id}


@router.get("/occupancy")
async def occupancy(home_id: str):
    return {"home": home_id, "occupied": []}
