import { describe, expect, it, vi } from "vitest";
import { ApiError, create[[ Entity ]], delete[[ Entity ]], login } from "./client";

function reply(status: number, body?: unknown) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

describe("the API client", () => {
  it("sends the token and a JSON body, and returns the parsed answer", async () => {
    const created = { id: 1, title: "First", completed: false, created_at: "2030-01-01T00:00:00Z" };
    const fetch = vi.fn(async (_input: RequestInfo | URL, _init?: RequestInit) => reply(201, created));
    vi.stubGlobal("fetch", fetch);

    await expect(create[[ Entity ]]("secret-token", { title: "First" })).resolves.toEqual(created);
    const [url, init] = fetch.mock.calls[0]!;
    expect(String(url)).toMatch(/\/api\/[[ entities ]]$/);
    expect(init?.method).toBe("POST");
    expect(init?.headers).toMatchObject({ Authorization: "Bearer secret-token", "Content-Type": "application/json" });
    expect(JSON.parse(String(init?.body))).toEqual({ title: "First" });
  });

  it("turns an error answer into an ApiError with the server's message", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => reply(401, { error: "wrong email or password" })));
    const failure = login("ada@example.com", "nope").catch((error: unknown) => error);
    await expect(failure).resolves.toBeInstanceOf(ApiError);
    await expect(failure).resolves.toMatchObject({ status: 401, message: "wrong email or password" });
  });

  it("reports an unreachable server as status 0", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("network down"))));
    await expect(login("ada@example.com", "whatever1")).rejects.toMatchObject({ status: 0 });
  });

  it("resolves a 204 to nothing", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => reply(204)));
    await expect(delete[[ Entity ]]("secret-token", 3)).resolves.toBeUndefined();
  });
});
