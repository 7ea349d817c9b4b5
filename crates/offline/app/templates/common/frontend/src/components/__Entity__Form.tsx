import { useState, type FormEvent } from "react";
import type { New[[ Entity ]] } from "../api/client";
import { Button } from "./Button";

export interface [[ Entity ]]FormProps {
  /** Resolves to true when the [[ entity ]] was saved: the form then clears. */
  onSubmit(input: New[[ Entity ]]): Promise<boolean>;
}

/** What the inputs hold: text, except checkboxes. */
interface FormValues {
  title: string;
[% for field in fields %]
  [[ field.name ]]: [% if field.kind == "boolean" %]boolean[% else %]string[% endif %];
[% endfor %]
}

const empty: FormValues = {
  title: "",
[% for field in fields %]
  [[ field.name ]]: [% if field.kind == "boolean" %]false[% else %]""[% endif %],
[% endfor %]
};

/** The request for the values, or a message saying what to fix. */
function toInput(values: FormValues): New[[ Entity ]] | string {
  const title = values.title.trim();
  if (title.length === 0 || title.length > 200) {
    return "Enter a title of 1 to 200 characters.";
  }
  const input: New[[ Entity ]] = { title };
[% for field in fields %]
[% if field.kind == "integer" %]
  if (values.[[ field.name ]].trim() !== "") {
    const number = Number(values.[[ field.name ]]);
    if (!Number.isInteger(number)) {
      return [[ (field.label ~ " must be a whole number.") | tojson ]];
    }
    input.[[ field.name ]] = number;
  }
[% elif field.kind == "boolean" %]
  input.[[ field.name ]] = values.[[ field.name ]];
[% elif field.kind == "date" %]
  if (values.[[ field.name ]] !== "") {
    input.[[ field.name ]] = values.[[ field.name ]];
  }
[% else %]
  if (values.[[ field.name ]].trim() !== "") {
    input.[[ field.name ]] = values.[[ field.name ]].trim();
  }
[% endif %]
[% endfor %]
  return input;
}

export function [[ Entity ]]Form({ onSubmit }: [[ Entity ]]FormProps) {
  const [values, setValues] = useState<FormValues>(empty);
  const [problem, setProblem] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const input = toInput(values);
    if (typeof input === "string") {
      setProblem(input);
      return;
    }
    setProblem(null);
    setSaving(true);
    const saved = await onSubmit(input);
    setSaving(false);
    if (saved) {
      setValues(empty);
    }
  }

  return (
    <form className="card" onSubmit={submit} aria-label="New [[ entity ]]">
      <label>
        Title
        <input
          value={values.title}
          onChange={(event) => setValues({ ...values, title: event.target.value })}
          maxLength={200}
          required
        />
      </label>
[% for field in fields %]
[% if field.kind == "boolean" %]
      <label className="checkbox">
        <input
          type="checkbox"
          checked={values.[[ field.name ]]}
          onChange={(event) => setValues({ ...values, [[ field.name ]]: event.target.checked })}
        />
        {[[ field.label | tojson ]]}
      </label>
[% else %]
      <label>
        {[[ field.label | tojson ]]}
        <input
          type="[% if field.kind == "integer" %]number[% elif field.kind == "date" %]date[% else %]text[% endif %]"
[% if field.kind == "integer" %]
          step={1}
[% endif %]
          value={values.[[ field.name ]]}
          onChange={(event) => setValues({ ...values, [[ field.name ]]: event.target.value })}
        />
      </label>
[% endif %]
[% endfor %]
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      <Button type="submit" disabled={saving}>
        Add [[ entity ]]
      </Button>
    </form>
  );
}
