import { db } from "../db";
import { __Entity__, __Entity__Update, New__Entity__ } from "../models";

const columns = "id, owner_id AS \"ownerId\", title, details, done, created_at AS \"createdAt\"";

export const __entity__Service = {
  async list(userId: number): Promise<__Entity__[]> {
    const result = await db.query(
      `SELECT ${columns} FROM __entities__ t
       WHERE owner_id = $1
          OR EXISTS (SELECT 1 FROM __entity___shares s WHERE s.__entity___id = t.id AND s.user_id = $1)
       ORDER BY created_at DESC`,
      [userId],
    );
    return result.rows;
  },

  async create(userId: number, input: New__Entity__): Promise<__Entity__> {
    const result = await db.query(
      `INSERT INTO __entities__ (owner_id, title, details) VALUES ($1, $2, $3) RETURNING ${columns}`,
      [userId, input.title, input.details],
    );
    return result.rows[0];
  },

  async update(userId: number, id: number, changes: __Entity__Update): Promise<__Entity__ | null> {
    const result = await db.query(
      `UPDATE __entities__
       SET title = COALESCE($3, title), details = COALESCE($4, details), done = COALESCE($5, done)
       WHERE id = $2 AND owner_id = $1
       RETURNING ${columns}`,
      [userId, id, changes.title ?? null, changes.details ?? null, changes.done ?? null],
    );
    return result.rows[0] ?? null;
  },

  async remove(userId: number, id: number): Promise<boolean> {
    const result = await db.query("DELETE FROM __entities__ WHERE id = $2 AND owner_id = $1", [userId, id]);
    return (result.rowCount ?? 0) > 0;
  },
};
