from fastapi import APIRouter

router = APIRouter(prefix="/alerts")


@router.get("/active")
async def active_alerts():
    return {"alerts": []}


@router.get("/{alert_id}")
async def get_alert(alert_id: str):
    return {"id": alert_id}
