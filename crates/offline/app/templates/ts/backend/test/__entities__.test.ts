import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signUp, startApi, type TestApi } from "./helpers.js";

let api: TestApi;
let token: string;
beforeAll(async () => {
  api = await startApi();
  token = await signUp(api);
});
afterAll(async () => {
  await api.close();
});

/** For each extra field: a valid value, and another one to change it to. */
const extras: { [name: string]: [unknown, unknown] } = {
[% for field in fields %]
  [[ field.name ]]: [% if field.kind == "integer" %][4, 12][% elif field.kind == "boolean" %][true, false][% elif field.kind == "date" %]["2030-01-31", "2030-02-28"][% else %]["some text", "other text"][% endif %],
[% endfor %]
};

function extraValues(index: 0 | 1): { [name: string]: unknown } {
  return Object.fromEntries(Object.entries(extras).map(([name, values]) => [name, values[index]]));
}

describe("/api/[[ entities ]]", () => {
  it("needs a valid token", async () => {
    expect((await api.request("GET", "/api/[[ entities ]]")).status).toBe(401);
    expect((await api.request("GET", "/api/[[ entities ]]", { token: "forged.token" })).status).toBe(401);
    expect((await api.request("POST", "/api/[[ entities ]]", { body: { title: "x" } })).status).toBe(401);
  });

  it("creates, lists, reads, updates and deletes", async () => {
    const created = await api.request("POST", "/api/[[ entities ]]", {
      token,
      body: { title: "  First  ", ...extraValues(0) },
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.any(Number),
      title: "First",
      completed: false,
      ...extraValues(0),
      created_at: expect.any(String),
    });
    const id = created.body.id as number;

    const second = await api.request("POST", "/api/[[ entities ]]", { token, body: { title: "Second", completed: true } });
    expect(second.status).toBe(201);
    expect(second.body.completed).toBe(true);
[% for field in fields %]
    expect(second.body.[[ field.name ]]).toBeNull();
[% endfor %]

    const list = await api.request("GET", "/api/[[ entities ]]", { token });
    expect(list.status).toBe(200);
    expect(list.body.map((item: { id: number }) => item.id)).toEqual([second.body.id, id]);

    const read = await api.request("GET", `/api/[[ entities ]]/${id}`, { token });
    expect(read).toEqual({ status: 200, body: created.body });

    const patched = await api.request("PATCH", `/api/[[ entities ]]/${id}`, {
      token,
      body: { title: "Renamed", completed: true, ...extraValues(1) },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toEqual({ ...created.body, title: "Renamed", completed: true, ...extraValues(1) });

    const removed = await api.request("DELETE", `/api/[[ entities ]]/${id}`, { token });
    expect(removed.status).toBe(204);
    expect((await api.request("GET", `/api/[[ entities ]]/${id}`, { token })).status).toBe(404);
    expect((await api.request("DELETE", `/api/[[ entities ]]/${id}`, { token })).status).toBe(404);
  });
[% if fields %]

  it("clears an extra field with null", async () => {
    const created = await api.request("POST", "/api/[[ entities ]]", { token, body: { title: "Extras", ...extraValues(0) } });
    const cleared = Object.fromEntries(Object.keys(extras).map((name) => [name, null]));
    const patched = await api.request("PATCH", `/api/[[ entities ]]/${created.body.id}`, { token, body: cleared });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject(cleared);
  });
[% endif %]

  it("hides other users' [[ entities ]] (404)", async () => {
    const created = await api.request("POST", "/api/[[ entities ]]", { token, body: { title: "Mine" } });
    const stranger = await signUp(api);
    const path = `/api/[[ entities ]]/${created.body.id}`;
    expect((await api.request("GET", path, { token: stranger })).status).toBe(404);
    expect((await api.request("PATCH", path, { token: stranger, body: { completed: true } })).status).toBe(404);
    expect((await api.request("DELETE", path, { token: stranger })).status).toBe(404);
    expect((await api.request("GET", "/api/[[ entities ]]", { token: stranger })).body).toEqual([]);
  });

  it.each(["abc", "0", "-1", "1.5", "99999999999"])("answers 400 for the malformed id %s", async (id) => {
    expect((await api.request("GET", `/api/[[ entities ]]/${id}`, { token })).status).toBe(400);
    expect((await api.request("DELETE", `/api/[[ entities ]]/${id}`, { token })).status).toBe(400);
  });

  it.each([
    ["an array", []],
    ["invalid JSON", "{\"title\": "],
    ["no title", { completed: true }],
    ["a blank title", { title: "   " }],
    ["a title too long", { title: "x".repeat(201) }],
    ["a number as title", { title: 5 }],
    ["a string as completed", { title: "ok", completed: "yes" }],
    ["a NUL character", { title: "a\u0000b" }],
[% for field in fields %]
    ["a wrong [[ field.name ]]", { title: "ok", [[ field.name ]]: [% if field.kind == "integer" %]1.5[% elif field.kind == "boolean" %]"yes"[% elif field.kind == "date" %]"2030-02-30"[% else %]42[% endif %] }],
[% endfor %]
  ])("refuses to create with %s (400)", async (_case, body) => {
    const reply = await api.request("POST", "/api/[[ entities ]]", { token, body });
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({ error: expect.any(String) });
  });

  it.each([
    ["an empty object", {}],
    ["only unknown fields", { colour: "red" }],
    ["a null title", { title: null }],
    ["a string as completed", { completed: "yes" }],
  ])("refuses to update with %s (400)", async (_case, body) => {
    const created = await api.request("POST", "/api/[[ entities ]]", { token, body: { title: "Target" } });
    const reply = await api.request("PATCH", `/api/[[ entities ]]/${created.body.id}`, { token, body });
    expect(reply.status).toBe(400);
  });
});
