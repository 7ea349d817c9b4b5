-- Schema of the [[ entity ]] application. The backend runs this file at every start, so
-- each statement must be idempotent (IF NOT EXISTS). Names are quoted so any entity or
-- field name works, even one that SQL reserves.

CREATE TABLE IF NOT EXISTS users (
    id            serial PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS "[[ entities ]]" (
    id         serial PRIMARY KEY,
    owner_id   integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    completed  boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
[% if fields %]

-- Extra fields: added one by one, so a database created before a field existed gets it too.
[% endif %]
[% for field in fields %]
ALTER TABLE "[[ entities ]]" ADD COLUMN IF NOT EXISTS "[[ field.name ]]" [% if field.kind == "integer" %]integer[% elif field.kind == "boolean" %]boolean[% elif field.kind == "date" %]date[% else %]text[% endif %];
[% endfor %]

CREATE INDEX IF NOT EXISTS "[[ entities ]]_owner_idx" ON "[[ entities ]]" (owner_id, created_at DESC);
