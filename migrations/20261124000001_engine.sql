-- Guild's engine: projects, their task graphs, agent sessions, events and generated files.

CREATE TABLE projects (
    id                uuid PRIMARY KEY,
    description       text NOT NULL CHECK (length(description) BETWEEN 1 AND 20000),
    project_type      text NOT NULL CHECK (project_type IN ('fullstack', 'frontend', 'backend', 'api')),
    technology_stack  text,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    options           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    requirements      jsonb CHECK (requirements IS NULL OR jsonb_typeof(requirements) = 'object'),
    idempotency_key   text UNIQUE,
    error             text,
    prompt_tokens     bigint NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens bigint NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    -- NULL while any call's cost is unknown (a model missing from the price table).
    cost_usd          numeric(14, 6) CHECK (cost_usd >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    CHECK ((status IN ('completed', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);

-- A worker's slot for one agent kind.
CREATE TABLE agent_sessions (
    id               uuid PRIMARY KEY,
    worker_id        text NOT NULL,
    slot             integer NOT NULL CHECK (slot >= 0),
    agent            text NOT NULL CHECK (agent IN ('analyst', 'backend', 'frontend', 'devops', 'reviewer')),
    current_task_id  uuid,
    tasks_completed  bigint NOT NULL DEFAULT 0 CHECK (tasks_completed >= 0),
    tasks_failed     bigint NOT NULL DEFAULT 0 CHECK (tasks_failed >= 0),
    busy_ms          bigint NOT NULL DEFAULT 0 CHECK (busy_ms >= 0),
    started_at       timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (worker_id, slot, agent)
);

CREATE TABLE tasks (
    id                uuid PRIMARY KEY,
    project_id        uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key               text NOT NULL CHECK (key ~ '^[a-z0-9_]{1,64}$'),
    kind              text NOT NULL CHECK (kind ~ '^[a-z0-9_]{1,64}$'),
    agent             text NOT NULL CHECK (agent IN ('analyst', 'backend', 'frontend', 'devops', 'reviewer')),
    description       text NOT NULL,
    priority          smallint NOT NULL,
    critical          boolean NOT NULL DEFAULT false,
    estimated_minutes integer NOT NULL CHECK (estimated_minutes >= 0),
    status            text NOT NULL
                      CHECK (status IN ('blocked', 'ready', 'running', 'awaiting_approval',
                                        'completed', 'failed', 'skipped', 'cancelled')),
    -- Dependencies not yet completed; the task becomes ready when it reaches zero.
    pending_deps      integer NOT NULL CHECK (pending_deps >= 0),
    attempt           integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts      integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    run_after         timestamptz NOT NULL DEFAULT now(),
    lease_expires_at  timestamptz,
    worker_id         text,
    session_id        uuid REFERENCES agent_sessions (id) ON DELETE SET NULL,
    result            jsonb,
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    completed_at      timestamptz,
    UNIQUE (project_id, key),
    CHECK (status <> 'ready' OR pending_deps = 0),
    CHECK (status <> 'blocked' OR pending_deps > 0),
    CHECK (status <> 'running' OR (worker_id IS NOT NULL AND lease_expires_at IS NOT NULL AND attempt >= 1)),
    CHECK (status <> 'completed' OR (result IS NOT NULL AND completed_at IS NOT NULL))
);

ALTER TABLE agent_sessions
    ADD FOREIGN KEY (current_task_id) REFERENCES tasks (id) ON DELETE SET NULL;

-- Claiming scans only ready tasks, in the order it takes them.
CREATE INDEX tasks_ready_idx ON tasks (priority, created_at) WHERE status = 'ready';
-- Lease expiry scans only running tasks.
CREATE INDEX tasks_running_lease_idx ON tasks (lease_expires_at) WHERE status = 'running';

CREATE TABLE task_dependencies (
    task_id    uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    depends_on uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, depends_on),
    CHECK (task_id <> depends_on)
);

-- Releasing dependents looks edges up by the task that completed.
CREATE INDEX task_dependencies_depends_on_idx ON task_dependencies (depends_on);

-- Append-only analytics.
CREATE TABLE events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    task_id    uuid REFERENCES tasks (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind ~ '^[a-z_]{1,64}$'),
    data       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_project_idx ON events (project_id, id);

CREATE TABLE project_files (
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- Relative, no `..` segment, no backslash or NUL: a file can never escape the project.
    path       text NOT NULL CHECK (
                   length(path) BETWEEN 1 AND 512
                   AND path !~ '^/'
                   AND path !~ '(^|/)\.\.(/|$)'
                   AND path !~ '[\\[:cntrl:]]'),
    version    integer NOT NULL CHECK (version >= 1),
    content    text NOT NULL,
    sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes integer NOT NULL CHECK (size_bytes >= 0),
    language   text,
    task_id    uuid REFERENCES tasks (id) ON DELETE SET NULL,
    agent      text,
    attempt    integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, path, version)
);

-- Dependency context reads the files each task wrote.
CREATE INDEX project_files_task_idx ON project_files (task_id);
