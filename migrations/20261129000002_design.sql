-- Apps that run: the design every task of a project is held to, and prompt-cache usage.

-- A project's designs: version 1 from its design step, one more per change request. The
-- latest is the one tasks code against; earlier ones are kept.
CREATE TABLE designs (
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    version    integer NOT NULL CHECK (version >= 1),
    task_id    uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    design     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, version)
);

-- Prompt tokens the providers' prompt caches served (read) and stored (written): parts of
-- prompt_tokens, priced at the cache rates.
ALTER TABLE tasks
    ADD COLUMN cached_prompt_tokens bigint NOT NULL DEFAULT 0 CHECK (cached_prompt_tokens >= 0),
    ADD COLUMN cache_write_tokens bigint NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0);
ALTER TABLE projects
    ADD COLUMN cached_prompt_tokens bigint NOT NULL DEFAULT 0 CHECK (cached_prompt_tokens >= 0),
    ADD COLUMN cache_write_tokens bigint NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0);
