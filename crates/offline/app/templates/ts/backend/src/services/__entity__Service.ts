// The rules for [[ entities ]]: what a valid request is, and that users reach only their own.
// Unknown body fields are ignored; a field of the wrong type is a 400.

import { HttpError, readObject, readString, type JsonObject } from "../http.js";
import type { [[ Entity ]], [[ Entity ]]Changes, New[[ Entity ]] } from "../models.js";
import type { Store } from "../store.js";

function readTitle(value: unknown): string {
  const title = readString(value, "title", 1000).trim();
  if (title.length < 1 || title.length > 200) {
    throw new HttpError(400, "title must be 1 to 200 characters long");
  }
  return title;
}

function readBoolean(value: unknown, name: string): boolean {
  if (typeof value !== "boolean") {
    throw new HttpError(400, `${name} must be true or false`);
  }
  return value;
}
[% for field in fields if field.kind == "text" %]
[% if loop.first %]

function readOptionalText(value: unknown, name: string): string | null {
  return value === null ? null : readString(value, name, 1000);
}
[% endif %]
[% endfor %]
[% for field in fields if field.kind == "integer" %]
[% if loop.first %]

function readOptionalInteger(value: unknown, name: string): number | null {
  if (value === null) {
    return null;
  }
  if (typeof value !== "number" || !Number.isInteger(value) || Math.abs(value) > 2147483647) {
    throw new HttpError(400, `${name} must be a whole number (32-bit) or null`);
  }
  return value;
}
[% endif %]
[% endfor %]
[% for field in fields if field.kind == "boolean" %]
[% if loop.first %]

function readOptionalBoolean(value: unknown, name: string): boolean | null {
  return value === null ? null : readBoolean(value, name);
}
[% endif %]
[% endfor %]
[% for field in fields if field.kind == "date" %]
[% if loop.first %]

/** A calendar date "YYYY-MM-DD" (year 1 or later), or null. */
function readOptionalDate(value: unknown, name: string): string | null {
  if (value === null) {
    return null;
  }
  const valid =
    typeof value === "string" &&
    /^\d{4}-\d{2}-\d{2}$/.test(value) &&
    !value.startsWith("0000") &&
    new Date(`${value}T00:00:00Z`).toISOString().startsWith(value);
  if (!valid) {
    throw new HttpError(400, `${name} must be a date like 2024-12-31 or null`);
  }
  return value;
}
[% endif %]
[% endfor %]

/** The known fields a body has (own properties only: never inherited ones like "constructor"). */
function readChanges(data: JsonObject): [[ Entity ]]Changes {
  const changes: [[ Entity ]]Changes = {};
  if (Object.hasOwn(data, "title")) {
    changes.title = readTitle(data.title);
  }
  if (Object.hasOwn(data, "completed")) {
    changes.completed = readBoolean(data.completed, "completed");
  }
[% for field in fields %]
  if (Object.hasOwn(data, "[[ field.name ]]")) {
    changes.[[ field.name ]] = readOptional[% if field.kind == "integer" %]Integer[% elif field.kind == "boolean" %]Boolean[% elif field.kind == "date" %]Date[% else %]Text[% endif %](data.[[ field.name ]], "[[ field.name ]]");
  }
[% endfor %]
  return changes;
}

/** A create body: a title is required; completed defaults to false, extras to null. */
export function parseNew[[ Entity ]](body: unknown): New[[ Entity ]] {
  const data = readObject(body);
  if (!Object.hasOwn(data, "title")) {
    throw new HttpError(400, "title is required");
  }
  const changes = readChanges(data);
  return {
    title: changes.title ?? "",
    completed: changes.completed ?? false,
[% for field in fields %]
    [[ field.name ]]: changes.[[ field.name ]] ?? null,
[% endfor %]
  };
}

/** An update body: at least one known field. */
export function parse[[ Entity ]]Changes(body: unknown): [[ Entity ]]Changes {
  const changes = readChanges(readObject(body));
  if (Object.keys(changes).length === 0) {
    throw new HttpError(400, "nothing to change: send any of title, completed[% for field in fields %], [[ field.name ]][% endfor %]");
  }
  return changes;
}

export class [[ Entity ]]Service {
  constructor(private readonly store: Store) {}

  list(ownerId: number): Promise<[[ Entity ]][]> {
    return this.store.list[[ Entities ]](ownerId);
  }

  async get(ownerId: number, id: number): Promise<[[ Entity ]]> {
    return found(await this.store.get[[ Entity ]](ownerId, id));
  }

  create(ownerId: number, body: unknown): Promise<[[ Entity ]]> {
    return this.store.create[[ Entity ]](ownerId, parseNew[[ Entity ]](body));
  }

  async update(ownerId: number, id: number, body: unknown): Promise<[[ Entity ]]> {
    return found(await this.store.update[[ Entity ]](ownerId, id, parse[[ Entity ]]Changes(body)));
  }

  async remove(ownerId: number, id: number): Promise<void> {
    if (!(await this.store.delete[[ Entity ]](ownerId, id))) {
      throw new HttpError(404, "[[ entity ]] not found");
    }
  }
}

function found<T>(item: T | null): T {
  if (item === null) {
    throw new HttpError(404, "[[ entity ]] not found");
  }
  return item;
}
