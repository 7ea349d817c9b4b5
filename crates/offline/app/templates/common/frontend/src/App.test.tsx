import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { App } from "./App";

type Json = { [key: string]: unknown };

/** An in-memory stand-in for the API, answering fetch as the contract says. */
function fakeApi(options: { listStatus?: number } = {}) {
  const items: Json[] = [];
  let lastId = 0;
  const reply = (status: number, body?: unknown) =>
    new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: { "Content-Type": "application/json" },
    });

  const fetch = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const method = init.method ?? "GET";
    const path = new URL(String(input), "http://localhost").pathname;
    const body: Json = init.body ? JSON.parse(String(init.body)) : {};
    if (path === "/api/auth/register" || path === "/api/auth/login") {
      if (body.password === "wrong password") {
        return reply(401, { error: "wrong email or password" });
      }
      return reply(path.endsWith("register") ? 201 : 200, { token: "token-1", user: { id: 1, email: body.email } });
    }
    if (path === "/api/[[ entities ]]" && method === "GET") {
      return options.listStatus ? reply(options.listStatus, { error: "missing or invalid token" }) : reply(200, [...items].reverse());
    }
    if (path === "/api/[[ entities ]]" && method === "POST") {
      lastId += 1;
      const item = { id: lastId, completed: false, [% for field in fields %][[ field.name ]]: null, [% endfor %]created_at: new Date().toISOString(), ...body };
      items.push(item);
      return reply(201, item);
    }
    const item = items.find((entry) => path === `/api/[[ entities ]]/${String(entry.id)}`);
    if (!item) {
      return reply(404, { error: "[[ entity ]] not found" });
    }
    if (method === "PATCH") {
      Object.assign(item, body);
      return reply(200, item);
    }
    items.splice(items.indexOf(item), 1);
    return reply(204);
  });
  vi.stubGlobal("fetch", fetch);
  return { items, fetch };
}

async function signUp() {
  fireEvent.click(screen.getByRole("button", { name: "Create an account instead" }));
  fireEvent.change(screen.getByLabelText("Email"), { target: { value: "ada@example.com" } });
  fireEvent.change(screen.getByLabelText("Password"), { target: { value: "correct horse" } });
  fireEvent.click(screen.getByRole("button", { name: "Create account" }));
  await screen.findByText("Signed in as ada@example.com");
}

describe("App", () => {
  it("signs up, adds, completes and deletes a [[ entity ]], and signs out", async () => {
    const api = fakeApi();
    render(<App />);
    await signUp();
    await screen.findByText("No [[ entities ]] yet.");

    fireEvent.change(screen.getByLabelText("Title"), { target: { value: "First [[ entity ]]" } });
[% for field in fields %]
[% if field.kind == "boolean" %]
    fireEvent.click(screen.getByLabelText([[ field.label | tojson ]]));
[% else %]
    fireEvent.change(screen.getByLabelText([[ field.label | tojson ]]), { target: { value: "[% if field.kind == "integer" %]4[% elif field.kind == "date" %]2030-01-31[% else %]some text[% endif %]" } });
[% endif %]
[% endfor %]
    fireEvent.click(screen.getByRole("button", { name: "Add [[ entity ]]" }));
    const row = (await screen.findByText("First [[ entity ]]")).closest("li")!;
    expect(api.items[0]).toMatchObject({
      title: "First [[ entity ]]",
[% for field in fields %]
      [[ field.name ]]: [% if field.kind == "integer" %]4[% elif field.kind == "boolean" %]true[% elif field.kind == "date" %]"2030-01-31"[% else %]"some text"[% endif %],
[% endfor %]
    });
[% for field in fields %]
    expect(row.textContent).toContain([[ field.label | tojson ]]);
[% endfor %]

    const done = within(row).getByRole("checkbox") as HTMLInputElement;
    fireEvent.click(done);
    await waitFor(() => expect(done.checked).toBe(true));
    expect(api.items[0]).toMatchObject({ completed: true });

    fireEvent.click(within(row).getByRole("button", { name: "Delete First [[ entity ]]" }));
    await screen.findByText("No [[ entities ]] yet.");
    expect(api.items).toHaveLength(0);

    fireEvent.click(screen.getByRole("button", { name: "Sign out" }));
    expect(screen.getByRole("heading", { name: "Log in" })).toBeTruthy();
    expect(localStorage.length).toBe(0);
  });

  it("shows the server's message when logging in fails", async () => {
    fakeApi();
    render(<App />);
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: "ada@example.com" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "wrong password" } });
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));
    expect((await screen.findByRole("alert")).textContent).toBe("wrong email or password");
  });

  it("keeps the session across reloads, and signs out when the API refuses the token", async () => {
    fakeApi();
    const { unmount } = render(<App />);
    await signUp();
    unmount();

    fakeApi({ listStatus: 401 });
    render(<App />);
    expect(screen.getByText("Signed in as ada@example.com")).toBeTruthy();
    expect(await screen.findByRole("heading", { name: "Log in" })).toBeTruthy();
  });
});
