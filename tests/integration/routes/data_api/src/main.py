"""data-api application: includes several routers."""
from fastapi import FastAPI

from .devices_endpoints import router as devices_router
from .events_endpoints import router as events_router

app = FastAPI(title="data-api")


@app.get("/health")
async def health():
    return {"status": "healthy"}


app.include_router(events_router)
app.include_router(devices_router)
