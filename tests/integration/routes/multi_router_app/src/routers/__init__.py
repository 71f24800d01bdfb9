from .alerts import router as alerts_router
from .homes import router as homes_router

__all__ = ["alerts_router", "homes_router"]
