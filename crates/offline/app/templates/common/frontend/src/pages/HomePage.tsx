import type { Session } from "../api/client";
import { Button } from "../components/Button";
import { [[ Entity ]]Form } from "../components/[[ Entity ]]Form";
import { [[ Entity ]]List } from "../components/[[ Entity ]]List";
import { use[[ Entities ]] } from "../state/[[ entity ]]Store";

export interface HomePageProps {
  session: Session;
  onSignOut(): void;
}

/** The signed-in page: add [[ entities ]], tick them off, delete them. */
export function HomePage({ session, onSignOut }: HomePageProps) {
  const { items, loading, error, create, toggle, remove } = use[[ Entities ]](session.token, onSignOut);

  return (
    <>
      <div className="toolbar">
        <span>Signed in as {session.user.email}</span>
        <Button variant="secondary" onClick={onSignOut}>
          Sign out
        </Button>
      </div>
      <[[ Entity ]]Form onSubmit={create} />
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <section className="card" aria-label="[[ Entities ]]">
        {loading ? <p>Loading…</p> : <[[ Entity ]]List items={items} onToggle={toggle} onDelete={remove} />}
      </section>
    </>
  );
}
