import { useState, type FormEvent } from "react";
import { login, register, type Session } from "../api/client";
import { Button } from "../components/Button";

export interface SignInPageProps {
  onSignedIn(session: Session): void;
}

/** Log in, or create an account (the API signs the new account in at once). */
export function SignInPage({ onSignedIn }: SignInPageProps) {
  const [mode, setMode] = useState<"login" | "register">("login");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const registering = mode === "register";

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await (registering ? register : login)(email, password));
    } catch (reason) {
      setError(reason instanceof Error ? reason.message : "Something went wrong.");
      setBusy(false);
    }
  }

  return (
    <form className="card" onSubmit={submit} aria-label={registering ? "Create an account" : "Log in"}>
      <h2>{registering ? "Create an account" : "Log in"}</h2>
      <label>
        Email
        <input type="email" autoComplete="email" value={email} onChange={(event) => setEmail(event.target.value)} required />
      </label>
      <label>
        Password
        <input
          type="password"
          autoComplete={registering ? "new-password" : "current-password"}
          minLength={registering ? 8 : undefined}
          maxLength={128}
          value={password}
          onChange={(event) => setPassword(event.target.value)}
          required
        />
      </label>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <Button type="submit" disabled={busy}>
        {registering ? "Create account" : "Log in"}
      </Button>
      <Button variant="secondary" onClick={() => setMode(registering ? "login" : "register")}>
        {registering ? "I have an account" : "Create an account instead"}
      </Button>
    </form>
  );
}
