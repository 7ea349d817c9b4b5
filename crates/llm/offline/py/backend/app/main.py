"""HTTP routes of the __entity__ application."""

from fastapi import Depends, FastAPI, HTTPException, Response

from app import services
from app.auth import current_user, router as auth_router
from app.models import New__Entity__, __Entity__, __Entity__Update

app = FastAPI(title="__Entity__ API")
app.include_router(auth_router, prefix="/api/auth")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/__entities__", response_model=list[__Entity__])
def list___entities__(user_id: int = Depends(current_user)) -> list[__Entity__]:
    return services.list___entities__(user_id)


@app.post("/api/__entities__", response_model=__Entity__, status_code=201)
def create___entity__(body: New__Entity__, user_id: int = Depends(current_user)) -> __Entity__:
    return services.create___entity__(user_id, body)


@app.patch("/api/__entities__/{item_id}", response_model=__Entity__)
def update___entity__(item_id: int, body: __Entity__Update, user_id: int = Depends(current_user)) -> __Entity__:
    updated = services.update___entity__(user_id, item_id, body)
    if updated is None:
        raise HTTPException(status_code=404, detail="not found")
    return updated


@app.delete("/api/__entities__/{item_id}", status_code=204)
def delete___entity__(item_id: int, user_id: int = Depends(current_user)) -> Response:
    if not services.delete___entity__(user_id, item_id):
        raise HTTPException(status_code=404, detail="not found")
    return Response(status_code=204)
