-- Real providers: usage per task, budgets per project, the response cache.

-- Budgets from the project's options: `options.max_tokens` and `options.max_cost_usd`.
-- Every call reserves its worst case against them first (see `guild_store::budget`).
ALTER TABLE projects ADD COLUMN max_tokens bigint
    GENERATED ALWAYS AS ((options->>'max_tokens')::bigint) STORED
    CHECK (max_tokens IS NULL OR max_tokens >= 1);
ALTER TABLE projects ADD COLUMN max_cost_usd numeric(14, 6)
    GENERATED ALWAYS AS ((options->>'max_cost_usd')::numeric(14, 6)) STORED
    CHECK (max_cost_usd IS NULL OR max_cost_usd > 0);
ALTER TABLE projects ADD COLUMN llm_calls bigint NOT NULL DEFAULT 0 CHECK (llm_calls >= 0);
ALTER TABLE projects ADD COLUMN cache_hits bigint NOT NULL DEFAULT 0 CHECK (cache_hits >= 0);

-- What each task's calls used, over all its attempts. `cost_usd` is NULL once a call's
-- cost is unknown, as on the project.
ALTER TABLE tasks ADD COLUMN prompt_tokens bigint NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0);
ALTER TABLE tasks ADD COLUMN completion_tokens bigint NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0);
ALTER TABLE tasks ADD COLUMN cost_usd numeric(14, 6) DEFAULT 0 CHECK (cost_usd >= 0);
ALTER TABLE tasks ADD COLUMN llm_calls integer NOT NULL DEFAULT 0 CHECK (llm_calls >= 0);
ALTER TABLE tasks ADD COLUMN cache_hits integer NOT NULL DEFAULT 0 CHECK (cache_hits >= 0);
-- What the running attempt's calls hold against the budget and that its settlement has
-- not yet added to the totals: worst cases of calls in flight, spend of calls made.
-- Counted only while the task runs; a claim starts it from zero.
ALTER TABLE tasks ADD COLUMN reserved_tokens bigint NOT NULL DEFAULT 0 CHECK (reserved_tokens >= 0);
ALTER TABLE tasks ADD COLUMN reserved_cost_usd numeric(14, 6) NOT NULL DEFAULT 0 CHECK (reserved_cost_usd >= 0);

-- Answers of calls at temperature 0, keyed by a SHA-256 of the provider's identity, the
-- model, the messages and the parameters (never the credentials).
CREATE TABLE llm_cache (
    key          bytea PRIMARY KEY CHECK (length(key) = 32),
    provider     text NOT NULL,
    model        text NOT NULL,
    content      text NOT NULL,
    prompt_tokens     bigint NOT NULL CHECK (prompt_tokens >= 0),
    completion_tokens bigint NOT NULL CHECK (completion_tokens >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    hits         bigint NOT NULL DEFAULT 0,
    last_hit_at  timestamptz
);

-- A project's cost starts at 0 (it was NULL until the first call); NULL now only means
-- unknown.
UPDATE projects SET cost_usd = 0 WHERE cost_usd IS NULL AND prompt_tokens = 0 AND completion_tokens = 0;
ALTER TABLE projects ALTER COLUMN cost_usd SET DEFAULT 0;
