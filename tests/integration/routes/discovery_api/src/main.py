"""An app including several routers, one of them with an include prefix."""
from fastapi import FastAPI

from . import discovery, status

app = FastAPI(title="device-intelligence")
app.include_router(status.router, prefix="/api")
app.include_router(discovery.router)


@app.get("/health")
async def health():
    return {"status": "healthy"}
