-- Code you can trust: every file version is validated and says who made it and how; review
-- findings grow the graph with fix tasks and re-reviews.

ALTER TABLE project_files
    -- {status: valid|invalid|unchecked, checker, errors: [{line, column, message}]};
    -- NULL for versions stored before validation existed.
    ADD COLUMN validation     jsonb CHECK (validation IS NULL OR jsonb_typeof(validation) = 'object'),
    ADD COLUMN model          text,
    ADD COLUMN prompt_version text,
    -- 0: the task's first answer; n: its n-th repair round.
    ADD COLUMN repair_round   integer NOT NULL DEFAULT 0 CHECK (repair_round >= 0),
    -- The version this one replaced without having seen it: written by a task the graph
    -- does not order before this one's ({version, task_key, agent}).
    ADD COLUMN conflict       jsonb CHECK (conflict IS NULL OR jsonb_typeof(conflict) = 'object');

ALTER TABLE tasks
    -- 0 for planned tasks; n for the fix tasks and re-review of the n-th fix round.
    ADD COLUMN review_round integer NOT NULL DEFAULT 0 CHECK (review_round >= 0),
    -- The review findings a fix task fixes, or a re-review verifies.
    ADD COLUMN findings     jsonb CHECK (findings IS NULL OR jsonb_typeof(findings) = 'array');
