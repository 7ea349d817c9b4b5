import type { __Entity__Item } from "../components/__Entity__List";

const baseUrl = import.meta.env?.VITE_API_URL ?? "/api";

async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  const token = localStorage.getItem("token");
  const response = await fetch(`${baseUrl}${path}`, {
    ...init,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...init.headers,
    },
  });
  if (!response.ok) {
    throw new Error(`${init.method ?? "GET"} ${path} failed with ${response.status}`);
  }
  return response.status === 204 ? (undefined as T) : ((await response.json()) as T);
}

export const api = {
  list: () => request<__Entity__Item[]>("/__entities__"),
  create: (title: string) => request<__Entity__Item>("/__entities__", { method: "POST", body: JSON.stringify({ title }) }),
  update: (id: number, changes: Partial<__Entity__Item>) =>
    request<__Entity__Item>(`/__entities__/${id}`, { method: "PATCH", body: JSON.stringify(changes) }),
  remove: (id: number) => request<void>(`/__entities__/${id}`, { method: "DELETE" }),
};
