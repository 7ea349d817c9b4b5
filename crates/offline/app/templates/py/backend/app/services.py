"""The rules for [[ entities ]]: what a valid request is, and that users reach only their own.
Unknown body fields are ignored; a field of the wrong type is a 400."""

[% for field in fields if field.kind == "date" %]
[% if loop.first %]
import re
from datetime import date

[% endif %]
[% endfor %]
from app.http import HttpError, read_object, read_string
from app.models import New[[ Entity ]], [[ Entity ]], [[ Entity ]]Changes
from app.store import Store


def _title(value: object) -> str:
    title = read_string(value, "title", 1000).strip()
    if not 1 <= len(title) <= 200:
        raise HttpError(400, "title must be 1 to 200 characters long")
    return title


def _boolean(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise HttpError(400, f"{name} must be true or false")
    return value
[% for field in fields if field.kind == "text" %]
[% if loop.first %]


def _optional_text(value: object, name: str) -> str | None:
    return None if value is None else read_string(value, name, 1000)
[% endif %]
[% endfor %]
[% for field in fields if field.kind == "integer" %]
[% if loop.first %]


def _optional_integer(value: object, name: str) -> int | None:
    """A whole number that fits PostgreSQL's integer (4.0 counts, as in JSON), or None."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2_147_483_647:
        raise HttpError(400, f"{name} must be a whole number (32-bit) or null")
    return value
[% endif %]
[% endfor %]
[% for field in fields if field.kind == "boolean" %]
[% if loop.first %]


def _optional_boolean(value: object, name: str) -> bool | None:
    return None if value is None else _boolean(value, name)
[% endif %]
[% endfor %]
[% for field in fields if field.kind == "date" %]
[% if loop.first %]


def _optional_date(value: object, name: str) -> date | None:
    """A calendar date "YYYY-MM-DD" (year 1 or later), or None."""
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise HttpError(400, f"{name} must be a date like 2024-12-31 or null")
[% endif %]
[% endfor %]


def _changes(data: dict[str, object]) -> [[ Entity ]]Changes:
    """The fields of a body that are present (absent ones are left out)."""
    changes: [[ Entity ]]Changes = {}
    if "title" in data:
        changes["title"] = _title(data["title"])
    if "completed" in data:
        changes["completed"] = _boolean(data["completed"], "completed")
[% for field in fields %]
    if "[[ field.name ]]" in data:
        changes["[[ field.name ]]"] = _optional_[% if field.kind == "integer" %]integer[% elif field.kind == "boolean" %]boolean[% elif field.kind == "date" %]date[% else %]text[% endif %](data["[[ field.name ]]"], "[[ field.name ]]")
[% endfor %]
    return changes


def parse_new_[[ entity ]](body: object) -> New[[ Entity ]]:
    """A create body: a title is required; completed defaults to false, extras to null."""
    data = read_object(body)
    if "title" not in data:
        raise HttpError(400, "title is required")
    return New[[ Entity ]](**_changes(data))


def parse_[[ entity ]]_changes(body: object) -> [[ Entity ]]Changes:
    """An update body: at least one known field."""
    changes = _changes(read_object(body))
    if not changes:
        raise HttpError(400, "nothing to change: send any of title, completed[% for field in fields %], [[ field.name ]][% endfor %]")
    return changes


class [[ Entity ]]Service:
    def __init__(self, store: Store) -> None:
        self._store = store

    def list_items(self, owner_id: int) -> list[[ '[' ]][[ Entity ]]]:
        return self._store.list_[[ entities ]](owner_id)

    def get(self, owner_id: int, item_id: int) -> [[ Entity ]]:
        return _found(self._store.get_[[ entity ]](owner_id, item_id))

    def create(self, owner_id: int, body: object) -> [[ Entity ]]:
        return self._store.create_[[ entity ]](owner_id, parse_new_[[ entity ]](body))

    def update(self, owner_id: int, item_id: int, body: object) -> [[ Entity ]]:
        return _found(self._store.update_[[ entity ]](owner_id, item_id, parse_[[ entity ]]_changes(body)))

    def remove(self, owner_id: int, item_id: int) -> None:
        if not self._store.delete_[[ entity ]](owner_id, item_id):
            raise HttpError(404, "[[ entity ]] not found")


def _found(item: [[ Entity ]] | None) -> [[ Entity ]]:
    if item is None:
        raise HttpError(404, "[[ entity ]] not found")
    return item
