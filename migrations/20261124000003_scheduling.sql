-- Durable scheduling: fair claims, per-project parallelism, every attempt's error, stale sessions.

-- `options.max_parallel`: at most this many of the project's tasks run at once.
ALTER TABLE projects ADD COLUMN max_parallel integer
    GENERATED ALWAYS AS ((options->>'max_parallel')::integer) STORED
    CHECK (max_parallel IS NULL OR max_parallel >= 1);

-- Claims take ready tasks in `queue_at` order. A task queues when it becomes ready, but the
-- k-th of several tasks of one project that become ready together queues k seconds later:
-- a project that releases a hundred tasks at once gets one place per second of the queue,
-- and tasks of other projects that become ready meanwhile go in between. `run_after`
-- (a retry's backoff) still says when a task may run at all.
ALTER TABLE tasks ADD COLUMN queue_at timestamptz NOT NULL DEFAULT now();
DROP INDEX tasks_ready_idx;
CREATE INDEX tasks_ready_queue_idx ON tasks (queue_at, priority) WHERE status = 'ready';

-- The error of each failed attempt, oldest first: [{attempt, error, at}].
ALTER TABLE tasks ADD COLUMN errors jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(errors) = 'array');

-- A worker process's heartbeat, kept on each of its sessions: a session whose process stopped
-- heartbeating for longer than its lease is stale.
ALTER TABLE agent_sessions ADD COLUMN heartbeat_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE agent_sessions ADD COLUMN lease_secs double precision NOT NULL DEFAULT 30 CHECK (lease_secs > 0);
CREATE INDEX agent_sessions_worker_idx ON agent_sessions (worker_id);
