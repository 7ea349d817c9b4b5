// The shapes the backend reads and writes. The wire format uses snake_case names, as the
// database does, so a row, a response body and the frontend's types all agree.

export interface User {
  id: number;
  email: string;
}

/** A user as stored: the password hash never leaves the backend. */
export interface UserRecord extends User {
  password_hash: string;
}

/** Extra fields are optional: null when unset. Dates are "YYYY-MM-DD" strings. */
export interface [[ Entity ]] {
  id: number;
  title: string;
  completed: boolean;
[% for field in fields %]
  [[ field.name ]]: [% if field.kind == "integer" %]number[% elif field.kind == "boolean" %]boolean[% else %]string[% endif %] | null;
[% endfor %]
  /** ISO 8601 timestamp, set by the server. */
  created_at: string;
}

/** A validated create request: everything but the server-assigned fields. */
export type New[[ Entity ]] = Omit<[[ Entity ]], "id" | "created_at">;

/** A validated update request: only the fields to change. */
export type [[ Entity ]]Changes = Partial<New[[ Entity ]]>;
