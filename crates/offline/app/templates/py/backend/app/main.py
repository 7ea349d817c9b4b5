"""Entry point (python -m app.main): reads the environment, opens PostgreSQL, serves the app."""

import logging
import os
import sys

import uvicorn
from fastapi import FastAPI

from app.api import create_app
from app.db import PgStore

logger = logging.getLogger("app")


def build_app() -> FastAPI:
    """The app on PostgreSQL, or exit with one line saying what is wrong."""
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        sys.exit("DATABASE_URL is not set: point it at PostgreSQL, e.g. postgresql://postgres:postgres@localhost:5432/[[ entities ]]")
    if not os.environ.get("AUTH_SECRET"):
        logger.warning("AUTH_SECRET is not set: using a random secret, so sign-ins end when the server restarts")
    store = PgStore(database_url)
    try:
        store.open()
    except Exception as error:
        sys.exit(f"cannot prepare the database at DATABASE_URL: {error}")
    return create_app(store, cors_origin=os.environ.get("CORS_ORIGIN") or None)


def main() -> None:
    level = os.environ.get("LOG_LEVEL", "info").lower()
    if level not in ("debug", "info", "warning", "error"):
        level = "info"
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    port = os.environ.get("PORT", "[[ backend_port ]]")
    if not port.isdigit() or int(port) > 65535:
        sys.exit(f'PORT must be a port number, not "{port}"')
    host = os.environ.get("HOST", "127.0.0.1")
    uvicorn.run(build_app(), host=host, port=int(port), log_level=level)


if __name__ == "__main__":
    main()
