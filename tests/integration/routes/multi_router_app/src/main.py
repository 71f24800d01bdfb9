"""An application factory including routers in a loop under a versioned prefix."""
from fastapi import FastAPI

from .routers import alerts_router, homes_router

API_V1 = "/api/v1"


def create_app():
    application = FastAPI(title="multi-router")
    for router in [alerts_router, homes_router]:
        application.include_router(router, prefix=API_V1)

    @application.get("/health")
    async def health():
        return {"status": "healthy"}

    return application


app = create_app()
