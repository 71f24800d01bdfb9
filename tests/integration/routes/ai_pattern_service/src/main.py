from fastapi import FastAPI

from .api import synergy_router

app = FastAPI(title="ai-pattern-service")


@app.get("/health")
async def health():
    return {"status": "healthy"}


app.include_router(synergy_router.router)
