-- 001_init.sql — Loom's write tables. loomd applies migrations at start
-- under an advisory lock and records each in schema_migrations; never edit
-- a released migration, add a new NNN_*.sql instead. Dashboards read the
-- views in views/, never these tables.

-- Workflow definitions, content-addressed by the SHA-256 of their YAML.
CREATE TABLE workflows (
    hash        text PRIMARY KEY,            -- lowercase hex SHA-256 of yaml
    name        text NOT NULL,
    sla_ms      double precision,
    yaml        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workers (
    id            text PRIMARY KEY,
    device_class  text NOT NULL,             -- cpu | gpu | npu
    device_name   text NOT NULL DEFAULT '',
    slots         integer NOT NULL DEFAULT 1,
    profile       text,                      -- measured device profile (JSON text)
    state         text NOT NULL DEFAULT 'ready', -- ready | draining | dead
    registered_at timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now()
);

-- Periodic load samples (heartbeats), for utilisation over time.
CREATE TABLE worker_samples (
    worker_id   text NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    busy_slots  integer NOT NULL,
    slots       integer NOT NULL,
    PRIMARY KEY (worker_id, at)
);

CREATE TABLE runs (
    id              text PRIMARY KEY,
    workflow_hash   text NOT NULL REFERENCES workflows(hash),
    workflow_name   text NOT NULL,
    state           text NOT NULL,           -- pending | running | succeeded | failed | cancelled | timed_out
    inputs          text,                    -- JSON text as the client sent it
    outputs         text,                    -- JSON text
    error           text,
    sla_ms          double precision,
    predicted_ms    double precision,        -- the plan's end-to-end prediction
    predicted_cost  double precision,
    submitted_at    timestamptz NOT NULL,
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX runs_unfinished ON runs (submitted_at)
    WHERE state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out');
CREATE INDEX runs_submitted ON runs (submitted_at);

-- One row per task (a step, or a granular piece of one such as a prefill).
CREATE TABLE tasks (
    run_id          text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    task_id         text NOT NULL,
    step_id         text NOT NULL,
    op              text NOT NULL DEFAULT '',
    state           text NOT NULL,           -- pending | ready | assigned | running | succeeded | failed | cancelled | timed_out | skipped
    device_class    text,                    -- where it ran (or is planned to)
    worker_id       text,
    reason          text,                    -- the plan's explanation for the placement
    needs           text,                    -- JSON array of task ids it waits for
    predicted_ms    double precision,
    predicted_cost  double precision,
    actual_ms       double precision,
    cost            double precision,
    attempts        integer NOT NULL DEFAULT 0,
    output          text,                    -- JSON text of the step output
    error           text,
    started_at      timestamptz,
    finished_at     timestamptz,
    PRIMARY KEY (run_id, task_id)
);

-- Append-only history of everything that happened to a run.
CREATE TABLE events (
    id      bigserial PRIMARY KEY,
    run_id  text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    task_id text,
    at      timestamptz NOT NULL DEFAULT now(),
    kind    text NOT NULL,
    detail  text
);
CREATE INDEX events_run ON events (run_id, id);

-- One row per finished run: did it meet its SLA.
CREATE TABLE sla_outcomes (
    run_id        text PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    workflow_name text NOT NULL,
    sla_ms        double precision,
    latency_ms    double precision NOT NULL,
    met           boolean NOT NULL,
    at            timestamptz NOT NULL
);
CREATE INDEX sla_outcomes_at ON sla_outcomes (at);
