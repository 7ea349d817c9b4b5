import type { [[ Entity ]] } from "../api/client";
import { Button } from "./Button";

export interface [[ Entity ]]ListProps {
  items: [[ Entity ]][];
  onToggle(item: [[ Entity ]]): void;
  onDelete(item: [[ Entity ]]): void;
}

export function [[ Entity ]]List({ items, onToggle, onDelete }: [[ Entity ]]ListProps) {
  if (items.length === 0) {
    return <p>No [[ entities ]] yet.</p>;
  }
  return (
    <ul className="items">
      {items.map((item) => (
        <li key={item.id} className={item.completed ? "item done" : "item"}>
          <label className="checkbox title">
            <input type="checkbox" checked={item.completed} onChange={() => onToggle(item)} />
            <span>{item.title}</span>
          </label>
[% for field in fields %]
          {item.[[ field.name ]] !== null && (
            <span className="extra">
              {[[ field.label | tojson ]]}: {[% if field.kind == "boolean" %]item.[[ field.name ]] ? "yes" : "no"[% else %]item.[[ field.name ]][% endif %]}
            </span>
          )}
[% endfor %]
          <Button variant="danger" onClick={() => onDelete(item)} aria-label={`Delete ${item.title}`}>
            Delete
          </Button>
        </li>
      ))}
    </ul>
  );
}
