// Where users and [[ entities ]] live. The app only sees the Store interface: PgStore (db.ts)
// keeps them in PostgreSQL, MemoryStore keeps them in memory for the tests.

import type { [[ Entity ]], [[ Entity ]]Changes, New[[ Entity ]], User, UserRecord } from "./models.js";

/** Thrown by createUser when the email belongs to an existing account. */
export class EmailTakenError extends Error {
  constructor() {
    super("email is already registered");
  }
}

export interface Store {
  /** Throws EmailTakenError if the email is taken. */
  createUser(email: string, passwordHash: string): Promise<User>;
  findUserByEmail(email: string): Promise<UserRecord | null>;
  findUserById(id: number): Promise<User | null>;
  /** The owner's [[ entities ]], newest first. */
  list[[ Entities ]](ownerId: number): Promise<[[ Entity ]][]>;
  /** null when absent or owned by someone else. */
  get[[ Entity ]](ownerId: number, id: number): Promise<[[ Entity ]] | null>;
  create[[ Entity ]](ownerId: number, input: New[[ Entity ]]): Promise<[[ Entity ]]>;
  update[[ Entity ]](ownerId: number, id: number, changes: [[ Entity ]]Changes): Promise<[[ Entity ]] | null>;
  /** false when absent or owned by someone else. */
  delete[[ Entity ]](ownerId: number, id: number): Promise<boolean>;
  close(): Promise<void>;
}

interface Owned[[ Entity ]] {
  ownerId: number;
  item: [[ Entity ]];
}

export class MemoryStore implements Store {
  private users: UserRecord[] = [];
  private items: Owned[[ Entity ]][] = [];
  private lastId = 0;

  async createUser(email: string, passwordHash: string): Promise<User> {
    if (this.users.some((user) => user.email === email)) {
      throw new EmailTakenError();
    }
    const user = { id: ++this.lastId, email, password_hash: passwordHash };
    this.users.push(user);
    return { id: user.id, email };
  }

  async findUserByEmail(email: string): Promise<UserRecord | null> {
    const user = this.users.find((candidate) => candidate.email === email);
    return user ? { ...user } : null;
  }

  async findUserById(id: number): Promise<User | null> {
    const user = this.users.find((candidate) => candidate.id === id);
    return user ? { id: user.id, email: user.email } : null;
  }

  async list[[ Entities ]](ownerId: number): Promise<[[ Entity ]][]> {
    return this.items
      .filter((entry) => entry.ownerId === ownerId)
      .map((entry) => ({ ...entry.item }))
      .reverse();
  }

  async get[[ Entity ]](ownerId: number, id: number): Promise<[[ Entity ]] | null> {
    const entry = this.find(ownerId, id);
    return entry ? { ...entry.item } : null;
  }

  async create[[ Entity ]](ownerId: number, input: New[[ Entity ]]): Promise<[[ Entity ]]> {
    const item = { ...input, id: ++this.lastId, created_at: new Date().toISOString() };
    this.items.push({ ownerId, item });
    return { ...item };
  }

  async update[[ Entity ]](ownerId: number, id: number, changes: [[ Entity ]]Changes): Promise<[[ Entity ]] | null> {
    const entry = this.find(ownerId, id);
    if (!entry) {
      return null;
    }
    entry.item = { ...entry.item, ...changes };
    return { ...entry.item };
  }

  async delete[[ Entity ]](ownerId: number, id: number): Promise<boolean> {
    const entry = this.find(ownerId, id);
    this.items = this.items.filter((candidate) => candidate !== entry);
    return entry !== undefined;
  }

  async close(): Promise<void> {}

  private find(ownerId: number, id: number): Owned[[ Entity ]] | undefined {
    return this.items.find((entry) => entry.ownerId === ownerId && entry.item.id === id);
  }
}
