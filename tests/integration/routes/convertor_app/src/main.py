"""Convertors: {id:int} protects /stats but not /0; {p:path} takes several segments."""
from fastapi import FastAPI

app = FastAPI()


@app.get("/orders/{order_id:int}")
async def get_order(order_id: int):
    return {"id": order_id}


@app.get("/orders/stats")
async def order_stats():
    return {"total": 0}


@app.get("/orders/0")
async def order_zero():
    return {"id": "zero"}


@app.get("/blobs/{blob_path:path}")
async def get_blob(blob_path: str):
    return {"path": blob_path}


@app.get("/blobs/meta/summary")
async def blob_summary():
    return {"count": 0}


@app.get("/prices/{amount:float}")
async def price(amount: float):
    return {"amount": amount}


@app.get("/prices/{whole:int}")
async def price_int(whole: int):
    return {"whole": whole}


@app.get("/typed/{thing_id}")
async def typed(thing_id: int):
    return {"id": thing_id}


@app.get("/typed/latest")
async def typed_latest():
    return {"id": None}
