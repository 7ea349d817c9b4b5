import React, { useState } from "react";
import { Button } from "../components/Button";
import { __Entity__List } from "../components/__Entity__List";
import { use__Entity__Store } from "../state/__entity__Store";

export function HomePage() {
  const { state, add, toggle, remove } = use__Entity__Store();
  const [title, setTitle] = useState("");

  return (
    <main className="page">
      <header>
        <h1>__Entity__s</h1>
      </header>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (title.trim().length > 0) {
            add(title.trim());
            setTitle("");
          }
        }}
      >
        <input value={title} onChange={(event) => setTitle(event.target.value)} placeholder="New __entity__" />
        <Button label="Add" onClick={() => undefined} />
      </form>
      {state.error && <p className="error">{state.error}</p>}
      <__Entity__List items={state.items} onToggle={toggle} onRemove={remove} />
    </main>
  );
}
