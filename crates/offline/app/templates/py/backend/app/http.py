"""HTTP plumbing shared by the routes: errors as {"error": message}, path ids, request bodies,
and the store the app was built with."""

import re
from typing import Annotated, Any, cast

from fastapi import Body, Depends, Request

from app.store import Store

# The largest id PostgreSQL's `integer` (and `serial`) can hold.
MAX_ID = 2_147_483_647


class HttpError(Exception):
    """An error the client caused or may know about: answered with its status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_id(raw: str) -> int:
    """A path id: a positive integer that fits the database, or a 400."""
    item_id = int(raw) if re.fullmatch(r"[0-9]{1,10}", raw) else 0
    if not 1 <= item_id <= MAX_ID:
        raise HttpError(400, "id must be a positive integer")
    return item_id


def read_object(body: object) -> dict[str, object]:
    """The request body as a JSON object, or a 400 (arrays, strings, numbers and no body)."""
    if not isinstance(body, dict):
        raise HttpError(400, "request body must be a JSON object")
    return cast(dict[str, object], body)


def read_string(value: object, name: str, max_length: int) -> str:
    """A string of valid, storable text (no NUL, no lone surrogate), or a 400."""
    if not isinstance(value, str) or len(value) > max_length or "\x00" in value or not _encodable(value):
        raise HttpError(400, f"{name} must be a string of at most {max_length} characters")
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]

# The raw JSON body (any type, or None when absent): the services validate it themselves, so
# that every invalid body is a 400 with a clear message.
JsonBody = Annotated[Any, Body()]
