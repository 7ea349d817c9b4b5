-- Change requests: a project has revisions, 1 for its first generation and one more per
-- change; every task belongs to the revision that added it.

CREATE TABLE revisions (
    project_id      uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    number          integer NOT NULL CHECK (number >= 1),
    description     text NOT NULL,
    options         jsonb NOT NULL DEFAULT '{}',
    -- The project's status when the next revision superseded it; NULL while it is the
    -- project's current revision (whose status is the project's).
    status          text CHECK (status IN ('completed', 'failed', 'cancelled')),
    idempotency_key text,
    request_hash    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, number)
);
CREATE UNIQUE INDEX revisions_idempotency_key ON revisions (project_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

ALTER TABLE projects ADD COLUMN revision integer NOT NULL DEFAULT 1 CHECK (revision >= 1);
ALTER TABLE tasks ADD COLUMN revision integer NOT NULL DEFAULT 1 CHECK (revision >= 1);

INSERT INTO revisions (project_id, number, description, options, created_at)
SELECT id, 1, description, options, created_at FROM projects;
