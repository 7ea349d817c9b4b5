// The signed-in session, kept in localStorage so a reload keeps the user signed in.

import { useCallback, useState } from "react";
import type { Session } from "../api/client";

const storageKey = "[[ project_name ]].session";

function isSession(value: unknown): value is Session {
  if (typeof value !== "object" || value === null || !("token" in value) || !("user" in value)) {
    return false;
  }
  const { token, user } = value;
  return typeof token === "string" && typeof user === "object" && user !== null && "email" in user;
}

/** The stored session, or null (none, unreadable, or storage unavailable). */
export function loadSession(): Session | null {
  try {
    const stored: unknown = JSON.parse(localStorage.getItem(storageKey) ?? "null");
    return isSession(stored) ? stored : null;
  } catch {
    return null;
  }
}

export function saveSession(session: Session | null): void {
  try {
    if (session) {
      localStorage.setItem(storageKey, JSON.stringify(session));
    } else {
      localStorage.removeItem(storageKey);
    }
  } catch {
    // Storage can be unavailable (private browsing): the session then lasts until reload.
  }
}

export interface SessionState {
  session: Session | null;
  signIn(session: Session): void;
  signOut(): void;
}

export function useSession(): SessionState {
  const [session, setSession] = useState<Session | null>(loadSession);

  const signIn = useCallback((next: Session) => {
    saveSession(next);
    setSession(next);
  }, []);

  const signOut = useCallback(() => {
    saveSession(null);
    setSession(null);
  }, []);

  return { session, signIn, signOut };
}
