// Test helpers: the real app on a random port, with an in-memory store instead of PostgreSQL.

import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { createApp } from "../src/app.js";
import { MemoryStore } from "../src/store.js";

export interface Reply {
  status: number;
  body: any;
}

export interface TestApi {
  /** Sends a request; `body` is sent as JSON unless it is a string (sent as is). */
  request(method: string, path: string, options?: { token?: string; body?: unknown }): Promise<Reply>;
  close(): Promise<void>;
}

export async function startApi(): Promise<TestApi> {
  const server: Server = createApp({ store: new MemoryStore() }).listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    async request(method, path, { token, body } = {}) {
      const headers: { [name: string]: string } = {};
      if (token) {
        headers.authorization = `Bearer ${token}`;
      }
      if (body !== undefined) {
        headers["content-type"] = "application/json";
      }
      const response = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      });
      const text = await response.text();
      const isJson = response.headers.get("content-type")?.includes("json") ?? false;
      return { status: response.status, body: text && isJson ? JSON.parse(text) : text };
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let accounts = 0;

/** Registers a fresh account and returns its token. */
export async function signUp(api: TestApi): Promise<string> {
  accounts += 1;
  const reply = await api.request("POST", "/api/auth/register", {
    body: { email: `user${accounts}@example.com`, password: "correct horse" },
  });
  if (reply.status !== 201) {
    throw new Error(`register failed: ${reply.status} ${JSON.stringify(reply.body)}`);
  }
  return reply.body.token as string;
}
