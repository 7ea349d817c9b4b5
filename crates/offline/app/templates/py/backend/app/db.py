"""PgStore: the Store backed by PostgreSQL. It creates the schema (db/schema.sql) on open."""

from dataclasses import asdict
from pathlib import Path

import psycopg
from psycopg import errors, sql
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from app.models import New[[ Entity ]], [[ Entity ]], [[ Entity ]]Changes, User, UserRecord
from app.store import EmailTaken

SCHEMA = Path(__file__).resolve().parent.parent / "db" / "schema.sql"
TABLE = sql.Identifier("[[ entities ]]")
# The columns of [[ entities ]] that the API shows, and the ones a client may set.
COLUMNS = sql.SQL(", ").join(
    sql.Identifier(name) for name in ["id", "title", "completed", [% for field in fields %]"[[ field.name ]]", [% endfor %]"created_at"]
)
WRITABLE = ("title", "completed"[% for field in fields %], "[[ field.name ]]"[% endfor %])


class PgStore:
    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        # Created closed; open() opens it. check= replaces connections broken by a restart.
        self._pool = ConnectionPool(
            database_url, min_size=1, max_size=10, open=False, check=ConnectionPool.check_connection
        )

    def open(self) -> None:
        """Applies the schema (failing fast if the database is unreachable), then opens the pool."""
        with psycopg.connect(self._database_url, connect_timeout=10) as conn:
            conn.execute(SCHEMA.read_bytes())
        self._pool.open(wait=True, timeout=10)

    def close(self) -> None:
        self._pool.close()

    def create_user(self, email: str, password_hash: str) -> User:
        query = "INSERT INTO users (email, password_hash) VALUES (%s, %s) RETURNING id, email"
        try:
            with self._pool.connection() as conn:
                cursor = conn.cursor(row_factory=class_row(User))
                user = cursor.execute(query, (email, password_hash)).fetchone()
        except errors.UniqueViolation:
            raise EmailTaken(email) from None
        assert user is not None
        return user

    def find_user_by_email(self, email: str) -> UserRecord | None:
        query = "SELECT id, email, password_hash FROM users WHERE email = %s"
        with self._pool.connection() as conn:
            return conn.cursor(row_factory=class_row(UserRecord)).execute(query, (email,)).fetchone()

    def find_user_by_id(self, user_id: int) -> User | None:
        with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(User))
            return cursor.execute("SELECT id, email FROM users WHERE id = %s", (user_id,)).fetchone()

    def list_[[ entities ]](self, owner_id: int) -> list[[ '[' ]][[ Entity ]]]:
        query = sql.SQL("SELECT {} FROM {} WHERE owner_id = %s ORDER BY created_at DESC, id DESC").format(
            COLUMNS, TABLE
        )
        with self._pool.connection() as conn:
            return conn.cursor(row_factory=class_row([[ Entity ]])).execute(query, (owner_id,)).fetchall()

    def get_[[ entity ]](self, owner_id: int, item_id: int) -> [[ Entity ]] | None:
        query = sql.SQL("SELECT {} FROM {} WHERE owner_id = %s AND id = %s").format(COLUMNS, TABLE)
        with self._pool.connection() as conn:
            return conn.cursor(row_factory=class_row([[ Entity ]])).execute(query, (owner_id, item_id)).fetchone()

    def create_[[ entity ]](self, owner_id: int, new: New[[ Entity ]]) -> [[ Entity ]]:
        values = asdict(new)
        query = sql.SQL("INSERT INTO {} (owner_id, {}) VALUES (%s, {}) RETURNING {}").format(
            TABLE,
            sql.SQL(", ").join(sql.Identifier(name) for name in WRITABLE),
            sql.SQL(", ").join(sql.Placeholder() for _ in WRITABLE),
            COLUMNS,
        )
        with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row([[ Entity ]]))
            item = cursor.execute(query, (owner_id, *(values[name] for name in WRITABLE))).fetchone()
        assert item is not None
        return item

    def update_[[ entity ]](self, owner_id: int, item_id: int, changes: [[ Entity ]]Changes) -> [[ Entity ]] | None:
        values: dict[str, object] = dict(changes)
        changed = [name for name in WRITABLE if name in values]
        if not changed:
            return self.get_[[ entity ]](owner_id, item_id)
        query = sql.SQL("UPDATE {} SET {} WHERE owner_id = %s AND id = %s RETURNING {}").format(
            TABLE,
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in changed),
            COLUMNS,
        )
        params = [*(values[name] for name in changed), owner_id, item_id]
        with self._pool.connection() as conn:
            return conn.cursor(row_factory=class_row([[ Entity ]])).execute(query, params).fetchone()

    def delete_[[ entity ]](self, owner_id: int, item_id: int) -> bool:
        query = sql.SQL("DELETE FROM {} WHERE owner_id = %s AND id = %s").format(TABLE)
        with self._pool.connection() as conn:
            return conn.execute(query, (owner_id, item_id)).rowcount > 0
