import { useCallback, useEffect, useReducer } from "react";
import { api } from "../api/client";
import type { __Entity__Item } from "../components/__Entity__List";

export interface __Entity__State {
  items: __Entity__Item[];
  loading: boolean;
  error: string | null;
}

type Action =
  | { type: "loaded"; items: __Entity__Item[] }
  | { type: "added"; item: __Entity__Item }
  | { type: "updated"; item: __Entity__Item }
  | { type: "removed"; id: number }
  | { type: "failed"; error: string };

export function reducer(state: __Entity__State, action: Action): __Entity__State {
  switch (action.type) {
    case "loaded":
      return { items: action.items, loading: false, error: null };
    case "added":
      return { ...state, items: [action.item, ...state.items] };
    case "updated":
      return { ...state, items: state.items.map((i) => (i.id === action.item.id ? action.item : i)) };
    case "removed":
      return { ...state, items: state.items.filter((i) => i.id !== action.id) };
    case "failed":
      return { ...state, loading: false, error: action.error };
  }
}

export function use__Entity__Store() {
  const [state, dispatch] = useReducer(reducer, { items: [], loading: true, error: null });
  const fail = (error: unknown) => dispatch({ type: "failed", error: String(error) });

  useEffect(() => {
    api.list().then((items) => dispatch({ type: "loaded", items }), fail);
  }, []);

  const add = useCallback((title: string) => {
    api.create(title).then((item) => dispatch({ type: "added", item }), fail);
  }, []);
  const toggle = useCallback(
    (id: number) => {
      const item = state.items.find((i) => i.id === id);
      if (item) {
        api.update(id, { done: !item.done }).then((updated) => dispatch({ type: "updated", item: updated }), fail);
      }
    },
    [state.items],
  );
  const remove = useCallback((id: number) => {
    api.remove(id).then(() => dispatch({ type: "removed", id }), fail);
  }, []);

  return { state, add, toggle, remove };
}
