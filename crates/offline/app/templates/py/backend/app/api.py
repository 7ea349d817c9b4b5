"""The FastAPI application: metrics, CORS, /health, the API routes and JSON errors.
It takes its store as a parameter: PostgreSQL in production, memory in the tests."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.middleware.base import RequestResponseEndpoint

from app.http import HttpError
from app.metrics import metrics, track_requests
from app.routes import [[ entities ]], auth
from app.store import Store

logger = logging.getLogger(__name__)

# Request bodies larger than this are refused before they are read (as express.json does).
MAX_BODY_BYTES = 100 * 1024


def create_app(store: Store, cors_origin: str | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    # The contract is docs/openapi.json: FastAPI's generated schema and docs are turned off.
    app = FastAPI(title="[[ Entities ]] API", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    app.state.store = store

    @app.middleware("http")
    async def limit_body_size(request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            return JSONResponse({"error": "request body is too large"}, status_code=400)
        return await call_next(request)

    # Added after limit_body_size, so it wraps it and counts its answers too.
    app.middleware("http")(track_requests)
    if cors_origin:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[cors_origin],
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.exception_handler(HttpError)
    async def http_error(_request: Request, error: HttpError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.exception_handler(HTTPException)
    async def starlette_error(_request: Request, error: HTTPException) -> JSONResponse:
        # Unknown paths (404) and methods (405).
        return JSONResponse({"error": str(error.detail).lower()}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        # The routes take raw JSON, so the only validation FastAPI does is parsing it.
        invalid_json = any(item.get("type") == "json_invalid" for item in error.errors())
        message = "request body is not valid JSON" if invalid_json else "invalid request"
        return JSONResponse({"error": message}, status_code=400)

    @app.exception_handler(RecursionError)
    async def nested_too_deeply(_request: Request, _error: RecursionError) -> JSONResponse:
        # json.loads gives up on bodies nested thousands of levels deep.
        return JSONResponse({"error": "request body is nested too deeply"}, status_code=400)

    @app.exception_handler(Exception)
    async def unexpected_error(_request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error", exc_info=error)
        return JSONResponse({"error": "internal server error"}, status_code=500)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.get("/metrics")(metrics)
    app.include_router(auth.router)
    app.include_router([[ entities ]].router)
    return app
