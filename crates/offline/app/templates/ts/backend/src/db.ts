// PgStore: the Store backed by PostgreSQL. It creates the schema (db/schema.sql) on connect.

import { readFile } from "node:fs/promises";
import pg from "pg";
import { logger } from "./logger.js";
import type { [[ Entity ]], [[ Entity ]]Changes, New[[ Entity ]], User, UserRecord } from "./models.js";
import { EmailTakenError, type Store } from "./store.js";

// Return DATE columns as "YYYY-MM-DD" strings instead of Date objects at local midnight.
const DATE_OID = 1082;
pg.types.setTypeParser(DATE_OID, (value: string) => value);

const UNIQUE_VIOLATION = "23505";
const schemaFile = new URL("../db/schema.sql", import.meta.url);

/** The columns of [[ entities ]] that the API shows, in order. */
const columns = `id, title, completed, [% for field in fields %]"[[ field.name ]]", [% endfor %]created_at`;
/** The columns a client may set. */
const writable: (keyof New[[ Entity ]])[] = ["title", "completed"[% for field in fields %], "[[ field.name ]]"[% endfor %]];

type Row = Omit<[[ Entity ]], "created_at"> & { created_at: Date };

function to[[ Entity ]](row: Row): [[ Entity ]] {
  return { ...row, created_at: row.created_at.toISOString() };
}

export class PgStore implements Store {
  private constructor(private readonly pool: pg.Pool) {}

  /** Connects, checks the connection and applies the schema. */
  static async connect(databaseUrl: string): Promise<PgStore> {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
    // An idle connection that breaks (database restart) must not crash the process.
    pool.on("error", (error) => logger.error("idle database connection failed", { error: error.message }));
    try {
      await pool.query(await readFile(schemaFile, "utf8"));
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PgStore(pool);
  }

  async createUser(email: string, passwordHash: string): Promise<User> {
    try {
      const result = await this.pool.query<User>(
        "INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id, email",
        [email, passwordHash],
      );
      return result.rows[0]!;
    } catch (error) {
      if (error instanceof pg.DatabaseError && error.code === UNIQUE_VIOLATION) {
        throw new EmailTakenError();
      }
      throw error;
    }
  }

  async findUserByEmail(email: string): Promise<UserRecord | null> {
    const result = await this.pool.query<UserRecord>(
      "SELECT id, email, password_hash FROM users WHERE email = $1",
      [email],
    );
    return result.rows[0] ?? null;
  }

  async findUserById(id: number): Promise<User | null> {
    const result = await this.pool.query<User>("SELECT id, email FROM users WHERE id = $1", [id]);
    return result.rows[0] ?? null;
  }

  async list[[ Entities ]](ownerId: number): Promise<[[ Entity ]][]> {
    const result = await this.pool.query<Row>(
      `SELECT ${columns} FROM "[[ entities ]]" WHERE owner_id = $1 ORDER BY created_at DESC, id DESC`,
      [ownerId],
    );
    return result.rows.map(to[[ Entity ]]);
  }

  async get[[ Entity ]](ownerId: number, id: number): Promise<[[ Entity ]] | null> {
    const result = await this.pool.query<Row>(
      `SELECT ${columns} FROM "[[ entities ]]" WHERE owner_id = $1 AND id = $2`,
      [ownerId, id],
    );
    return result.rows[0] ? to[[ Entity ]](result.rows[0]) : null;
  }

  async create[[ Entity ]](ownerId: number, input: New[[ Entity ]]): Promise<[[ Entity ]]> {
    const names = writable.map((column) => `"${column}"`).join(", ");
    const placeholders = writable.map((_, index) => `$${index + 2}`).join(", ");
    const result = await this.pool.query<Row>(
      `INSERT INTO "[[ entities ]]" (owner_id, ${names}) VALUES ($1, ${placeholders}) RETURNING ${columns}`,
      [ownerId, ...writable.map((column) => input[column])],
    );
    return to[[ Entity ]](result.rows[0]!);
  }

  async update[[ Entity ]](ownerId: number, id: number, changes: [[ Entity ]]Changes): Promise<[[ Entity ]] | null> {
    const changed = writable.filter((column) => changes[column] !== undefined);
    if (changed.length === 0) {
      return this.get[[ Entity ]](ownerId, id);
    }
    const assignments = changed.map((column, index) => `"${column}" = $${index + 3}`).join(", ");
    const result = await this.pool.query<Row>(
      `UPDATE "[[ entities ]]" SET ${assignments} WHERE owner_id = $1 AND id = $2 RETURNING ${columns}`,
      [ownerId, id, ...changed.map((column) => changes[column])],
    );
    return result.rows[0] ? to[[ Entity ]](result.rows[0]) : null;
  }

  async delete[[ Entity ]](ownerId: number, id: number): Promise<boolean> {
    const result = await this.pool.query(`DELETE FROM "[[ entities ]]" WHERE owner_id = $1 AND id = $2`, [
      ownerId,
      id,
    ]);
    return (result.rowCount ?? 0) > 0;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
