// The signed-in user's [[ entities ]]: loaded from the API, changed through it, kept in React state.

import { useCallback, useEffect, useState } from "react";
import {
  ApiError,
  create[[ Entity ]],
  delete[[ Entity ]],
  list[[ Entities ]],
  update[[ Entity ]],
  type [[ Entity ]],
  type New[[ Entity ]],
} from "../api/client";

export interface [[ Entities ]]State {
  items: [[ Entity ]][];
  loading: boolean;
  error: string | null;
  /** Resolves to true when the [[ entity ]] was created. */
  create(input: New[[ Entity ]]): Promise<boolean>;
  toggle(item: [[ Entity ]]): Promise<void>;
  remove(item: [[ Entity ]]): Promise<void>;
}

/** `onUnauthorized` runs when the API refuses the token (expired, or the server's secret changed). */
export function use[[ Entities ]](token: string, onUnauthorized: () => void): [[ Entities ]]State {
  const [items, setItems] = useState<[[ Entity ]][]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  const fail = useCallback(
    (reason: unknown) => {
      if (reason instanceof ApiError && reason.status === 401) {
        onUnauthorized();
        return;
      }
      setError(reason instanceof Error ? reason.message : "Something went wrong.");
    },
    [onUnauthorized],
  );

  useEffect(() => {
    let current = true;
    setLoading(true);
    list[[ Entities ]](token)
      .then((loaded) => {
        if (current) {
          setItems(loaded);
          setError(null);
        }
      })
      .catch((reason: unknown) => {
        if (current) {
          fail(reason);
        }
      })
      .finally(() => {
        if (current) {
          setLoading(false);
        }
      });
    return () => {
      current = false;
    };
  }, [token, fail]);

  const create = useCallback(
    async (input: New[[ Entity ]]) => {
      try {
        const created = await create[[ Entity ]](token, input);
        setItems((previous) => [created, ...previous]);
        setError(null);
        return true;
      } catch (reason) {
        fail(reason);
        return false;
      }
    },
    [token, fail],
  );

  const toggle = useCallback(
    async (item: [[ Entity ]]) => {
      try {
        const updated = await update[[ Entity ]](token, item.id, { completed: !item.completed });
        setItems((previous) => previous.map((entry) => (entry.id === updated.id ? updated : entry)));
        setError(null);
      } catch (reason) {
        fail(reason);
      }
    },
    [token, fail],
  );

  const remove = useCallback(
    async (item: [[ Entity ]]) => {
      try {
        await delete[[ Entity ]](token, item.id);
        setItems((previous) => previous.filter((entry) => entry.id !== item.id));
        setError(null);
      } catch (reason) {
        fail(reason);
      }
    },
    [token, fail],
  );

  return { items, loading, error, create, toggle, remove };
}
