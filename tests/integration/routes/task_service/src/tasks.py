"""Task router: GET /api/tasks/{task_id} before GET /api/tasks/history.

POST /api/tasks/history is reachable: the parameterised route only takes GET and DELETE.
"""
from fastapi import APIRouter

TASKS_PREFIX = "/api/tasks"
router = APIRouter(prefix=TASKS_PREFIX)


@router.get("")
async def list_tasks():
    return {"tasks": []}


@router.api_route("/{task_id}", methods=["GET", "DELETE"])
async def task_by_id(task_id: str):
    return {"task_id": task_id}


@router.get("/history")
async def task_history():
    return {"history": []}


@router.post("/history")
async def add_history():
    return {"added": True}
