"""Business rules for __entities__: owners and people they shared with can see them."""

from psycopg.rows import dict_row

from app.db import pool
from app.models import New__Entity__, __Entity__, __Entity__Update

COLUMNS = "id, owner_id, title, details, done, created_at"


def list___entities__(user_id: int) -> list[__Entity__]:
    with pool.connection() as conn:
        rows = conn.cursor(row_factory=dict_row).execute(
            f"""SELECT {COLUMNS} FROM __entities__ t
                WHERE owner_id = %s
                   OR EXISTS (SELECT 1 FROM __entity___shares s WHERE s.__entity___id = t.id AND s.user_id = %s)
                ORDER BY created_at DESC""",
            (user_id, user_id),
        ).fetchall()
    return [__Entity__(**row) for row in rows]


def create___entity__(user_id: int, body: New__Entity__) -> __Entity__:
    with pool.connection() as conn:
        row = conn.cursor(row_factory=dict_row).execute(
            f"INSERT INTO __entities__ (owner_id, title, details) VALUES (%s, %s, %s) RETURNING {COLUMNS}",
            (user_id, body.title, body.details),
        ).fetchone()
    return __Entity__(**row)


def update___entity__(user_id: int, item_id: int, body: __Entity__Update) -> __Entity__ | None:
    with pool.connection() as conn:
        row = conn.cursor(row_factory=dict_row).execute(
            f"""UPDATE __entities__
                SET title = COALESCE(%s, title), details = COALESCE(%s, details), done = COALESCE(%s, done)
                WHERE id = %s AND owner_id = %s
                RETURNING {COLUMNS}""",
            (body.title, body.details, body.done, item_id, user_id),
        ).fetchone()
    return __Entity__(**row) if row else None


def delete___entity__(user_id: int, item_id: int) -> bool:
    with pool.connection() as conn:
        cursor = conn.execute("DELETE FROM __entities__ WHERE id = %s AND owner_id = %s", (item_id, user_id))
    return cursor.rowcount > 0
