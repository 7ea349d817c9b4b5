// Typed calls to the API (its contract: docs/openapi.json). Names are snake_case, as on the
// wire. Every failure becomes an ApiError carrying the server's message.

export interface User {
  id: number;
  email: string;
}

export interface Session {
  token: string;
  user: User;
}

/** Extra fields are null when unset. Dates are "YYYY-MM-DD" strings. */
export interface [[ Entity ]] {
  id: number;
  title: string;
  completed: boolean;
[% for field in fields %]
  [[ field.name ]]: [% if field.kind == "integer" %]number[% elif field.kind == "boolean" %]boolean[% else %]string[% endif %] | null;
[% endfor %]
  created_at: string;
}

export interface New[[ Entity ]] {
  title: string;
  completed?: boolean;
[% for field in fields %]
  [[ field.name ]]?: [% if field.kind == "integer" %]number[% elif field.kind == "boolean" %]boolean[% else %]string[% endif %] | null;
[% endfor %]
}

export type [[ Entity ]]Changes = Partial<New[[ Entity ]]>;

/** Where the API is: VITE_API_URL at build time, else [% if backend %]this origin (the dev server and nginx forward /api)[% else %]a backend on this machine[% endif %]. */
export const apiUrl = (import.meta.env.VITE_API_URL || "[% if not backend %]http://localhost:[[ backend_port ]][% endif %]").replace(/\/+$/, "");

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

async function request<T>(method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<T> {
  const headers: { [name: string]: string } = {};
  if (options.token) {
    headers.Authorization = `Bearer ${options.token}`;
  }
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(`${apiUrl}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  }).catch(() => {
    throw new ApiError(0, "Cannot reach the server. Check your connection and try again.");
  });
  if (response.status === 204) {
    return undefined as T;
  }
  const payload: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const message =
      typeof payload === "object" && payload !== null && "error" in payload && typeof payload.error === "string"
        ? payload.error
        : `The server answered ${response.status}.`;
    throw new ApiError(response.status, message);
  }
  return payload as T;
}

export function register(email: string, password: string): Promise<Session> {
  return request("POST", "/api/auth/register", { body: { email, password } });
}

export function login(email: string, password: string): Promise<Session> {
  return request("POST", "/api/auth/login", { body: { email, password } });
}

export function list[[ Entities ]](token: string): Promise<[[ Entity ]][]> {
  return request("GET", "/api/[[ entities ]]", { token });
}

export function create[[ Entity ]](token: string, input: New[[ Entity ]]): Promise<[[ Entity ]]> {
  return request("POST", "/api/[[ entities ]]", { token, body: input });
}

export function update[[ Entity ]](token: string, id: number, changes: [[ Entity ]]Changes): Promise<[[ Entity ]]> {
  return request("PATCH", `/api/[[ entities ]]/${id}`, { token, body: changes });
}

export function delete[[ Entity ]](token: string, id: number): Promise<void> {
  return request("DELETE", `/api/[[ entities ]]/${id}`, { token });
}
