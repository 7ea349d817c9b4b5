"""Where users and [[ entities ]] live. The app only sees the Store protocol: PgStore (db.py)
keeps them in PostgreSQL, MemoryStore keeps them in memory for the tests."""

import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from app.models import New[[ Entity ]], [[ Entity ]], [[ Entity ]]Changes, User, UserRecord


class EmailTaken(Exception):
    """Raised by create_user when the email belongs to an existing account."""


class Store(Protocol):
    def close(self) -> None: ...

    def create_user(self, email: str, password_hash: str) -> User:
        """Raises EmailTaken if the email is taken."""
        ...

    def find_user_by_email(self, email: str) -> UserRecord | None: ...

    def find_user_by_id(self, user_id: int) -> User | None: ...

    def list_[[ entities ]](self, owner_id: int) -> list[[ '[' ]][[ Entity ]]]:
        """The owner's [[ entities ]], newest first."""
        ...

    def get_[[ entity ]](self, owner_id: int, item_id: int) -> [[ Entity ]] | None:
        """None when absent or owned by someone else."""
        ...

    def create_[[ entity ]](self, owner_id: int, new: New[[ Entity ]]) -> [[ Entity ]]: ...

    def update_[[ entity ]](self, owner_id: int, item_id: int, changes: [[ Entity ]]Changes) -> [[ Entity ]] | None: ...

    def delete_[[ entity ]](self, owner_id: int, item_id: int) -> bool:
        """False when absent or owned by someone else."""
        ...


class MemoryStore:
    """A Store in memory, for tests. Thread-safe: FastAPI runs sync routes in threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[int, UserRecord] = {}
        self._items: dict[int, tuple[int, [[ Entity ]]]] = {}  # id -> (owner id, item)
        self._last_id = 0

    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def close(self) -> None:
        pass

    def create_user(self, email: str, password_hash: str) -> User:
        with self._lock:
            if any(user.email == email for user in self._users.values()):
                raise EmailTaken(email)
            user = UserRecord(id=self._next_id(), email=email, password_hash=password_hash)
            self._users[user.id] = user
            return User(id=user.id, email=user.email)

    def find_user_by_email(self, email: str) -> UserRecord | None:
        with self._lock:
            found = next((user for user in self._users.values() if user.email == email), None)
            return replace(found) if found else None

    def find_user_by_id(self, user_id: int) -> User | None:
        with self._lock:
            found = self._users.get(user_id)
            return User(id=found.id, email=found.email) if found else None

    def list_[[ entities ]](self, owner_id: int) -> list[[ '[' ]][[ Entity ]]]:
        with self._lock:
            mine = [replace(item) for owner, item in self._items.values() if owner == owner_id]
            return sorted(mine, key=lambda item: item.id, reverse=True)

    def get_[[ entity ]](self, owner_id: int, item_id: int) -> [[ Entity ]] | None:
        with self._lock:
            owner, item = self._items.get(item_id, (None, None))
            return replace(item) if item and owner == owner_id else None

    def create_[[ entity ]](self, owner_id: int, new: New[[ Entity ]]) -> [[ Entity ]]:
        with self._lock:
            item = [[ Entity ]](
                id=self._next_id(),
                title=new.title,
                completed=new.completed,
[% for field in fields %]
                [[ field.name ]]=new.[[ field.name ]],
[% endfor %]
                created_at=datetime.now(UTC),
            )
            self._items[item.id] = (owner_id, item)
            return replace(item)

    def update_[[ entity ]](self, owner_id: int, item_id: int, changes: [[ Entity ]]Changes) -> [[ Entity ]] | None:
        with self._lock:
            owner, item = self._items.get(item_id, (None, None))
            if item is None or owner != owner_id:
                return None
            updated = replace(item, **changes)
            self._items[item_id] = (owner_id, updated)
            return replace(updated)

    def delete_[[ entity ]](self, owner_id: int, item_id: int) -> bool:
        with self._lock:
            owner, _ = self._items.get(item_id, (None, None))
            if owner != owner_id:
                return False
            del self._items[item_id]
            return True
