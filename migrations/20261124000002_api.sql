-- What the HTTP API needs: idempotent creation, retries with a fresh budget, review feedback.

-- SHA-256 of the creating request's body: the same Idempotency-Key with another body is refused.
ALTER TABLE projects ADD COLUMN request_hash text;
-- Attempts each task gets per run; a human retry grants this many again.
ALTER TABLE projects ADD COLUMN max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1);

-- A reviewer's feedback from a rejected approval, shown to the task's next attempt.
ALTER TABLE tasks ADD COLUMN feedback text;
-- Awaiting approval: the result is stored but dependents wait.
ALTER TABLE tasks ADD CONSTRAINT tasks_awaiting_has_result
    CHECK (status <> 'awaiting_approval' OR result IS NOT NULL);

-- Task lists of one project by status (GET /projects/{id}/tasks?status=).
CREATE INDEX tasks_project_status_idx ON tasks (project_id, status);
