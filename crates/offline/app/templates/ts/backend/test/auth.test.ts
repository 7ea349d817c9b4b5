import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApi, type TestApi } from "./helpers.js";

let api: TestApi;
beforeAll(async () => {
  api = await startApi();
});
afterAll(async () => {
  await api.close();
});

describe("accounts", () => {
  const credentials = { email: "Ada@Example.com", password: "correct horse" };

  it("registers, refuses a second account with the same email, and logs in", async () => {
    const registered = await api.request("POST", "/api/auth/register", { body: credentials });
    expect(registered.status).toBe(201);
    expect(registered.body.user).toEqual({ id: expect.any(Number), email: "ada@example.com" });
    expect(typeof registered.body.token).toBe("string");

    const again = await api.request("POST", "/api/auth/register", {
      body: { ...credentials, email: "ada@example.com" },
    });
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ error: expect.any(String) });

    const login = await api.request("POST", "/api/auth/login", { body: credentials });
    expect(login.status).toBe(200);
    expect(login.body.user).toEqual(registered.body.user);
  });

  it("answers 401 for a wrong password or an unknown email", async () => {
    const wrong = await api.request("POST", "/api/auth/login", {
      body: { email: credentials.email, password: "wrong password" },
    });
    expect(wrong.status).toBe(401);
    const unknown = await api.request("POST", "/api/auth/login", {
      body: { email: "nobody@example.com", password: "whatever1" },
    });
    expect(unknown.status).toBe(401);
  });

  it.each([
    ["no @ in the email", { email: "ada.example.com", password: "long enough" }],
    ["a short password", { email: "bob@example.com", password: "short" }],
    ["a password that is not a string", { email: "bob@example.com", password: 12345678 }],
    ["no email", { password: "long enough" }],
    ["an array body", []],
  ])("refuses to register with %s (400)", async (_case, body) => {
    const reply = await api.request("POST", "/api/auth/register", { body });
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({ error: expect.any(String) });
  });

  it("answers 400 for invalid JSON", async () => {
    const reply = await api.request("POST", "/api/auth/login", { body: "{not json" });
    expect(reply.status).toBe(400);
  });

  it("answers /health", async () => {
    const reply = await api.request("GET", "/health");
    expect(reply).toEqual({ status: 200, body: { status: "ok" } });
  });

  it("serves Prometheus metrics", async () => {
    const reply = await api.request("GET", "/metrics");
    expect(reply.status).toBe(200);
    expect(reply.body).toContain("http_requests_total");
  });
});
