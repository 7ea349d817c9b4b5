import React from "react";
import { Button } from "./Button";

export interface __Entity__Item {
  id: number;
  title: string;
  done: boolean;
}

interface __Entity__ListProps {
  items: __Entity__Item[];
  onToggle: (id: number) => void;
  onRemove: (id: number) => void;
}

export function __Entity__List({ items, onToggle, onRemove }: __Entity__ListProps) {
  if (items.length === 0) {
    return <p className="empty">Nothing here yet.</p>;
  }
  return (
    <ul className="__entity__-list">
      {items.map((item) => (
        <li key={item.id} className={item.done ? "done" : ""}>
          <label>
            <input type="checkbox" checked={item.done} onChange={() => onToggle(item.id)} />
            {item.title}
          </label>
          <Button label="Remove" variant="secondary" onClick={() => onRemove(item.id)} />
        </li>
      ))}
    </ul>
  );
}
