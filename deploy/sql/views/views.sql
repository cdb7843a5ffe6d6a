-- views.sql — what operators, the dashboard and Grafana read. Re-created
-- (DROP + CREATE, in one transaction under the migration lock) every time
-- loomd starts, so changing a view needs no migration. Latencies in ms,
-- costs in the catalog's currency unit (USD).

DROP VIEW IF EXISTS v_recent_runs, v_live_runs, v_sla_attainment_hourly,
    v_sla_attainment, v_cost_per_run, v_cost_per_workflow, v_cost_hourly,
    v_device_utilisation, v_device_utilisation_hourly, v_cost_model_error,
    v_cost_model_error_by_op, v_step_placement, v_fleet, v_run_events CASCADE;

-- The name of a loom.v1.StatusCode (envelope.proto) as stored in
-- runs.error_code / tasks.error_code; NULL for none.
CREATE OR REPLACE FUNCTION loom_status_name(code integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT (ARRAY['CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND',
                'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED',
                'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL',
                'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'])[code]
$$;

-- Runs, newest first when ordered by submitted_at.
CREATE VIEW v_recent_runs AS
SELECT r.id, r.workflow_name AS workflow, r.state, r.submitted_at,
       r.started_at, r.finished_at,
       round((extract(epoch FROM (r.finished_at - r.submitted_at)) * 1000)::numeric, 1)::double precision AS latency_ms,
       r.sla_ms,
       s.met AS sla_met,
       coalesce(t.cost, 0) AS cost,
       coalesce(t.n_tasks, 0) AS n_tasks,
       coalesce(t.n_done, 0) AS n_done,
       r.error,
       r.tenant,
       loom_status_name(r.error_code) AS error_code
FROM runs r
LEFT JOIN sla_outcomes s ON s.run_id = r.id
LEFT JOIN (SELECT run_id, sum(cost) AS cost, count(*) AS n_tasks,
                  count(*) FILTER (WHERE state = 'succeeded') AS n_done
           FROM tasks GROUP BY run_id) t ON t.run_id = r.id;

-- Runs not yet finished (queued or running).
CREATE VIEW v_live_runs AS
SELECT * FROM v_recent_runs
WHERE state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out');

CREATE VIEW v_sla_attainment_hourly AS
SELECT workflow_name AS workflow, date_trunc('hour', at) AS hour,
       count(*) AS runs,
       count(*) FILTER (WHERE met) AS met,
       count(*) FILTER (WHERE NOT met) AS missed,
       round(count(*) FILTER (WHERE met)::numeric / count(*), 4)::double precision AS attainment,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_ms
FROM sla_outcomes
GROUP BY 1, 2;

-- All-time attainment per workflow (the dashboard's SLA panel).
CREATE VIEW v_sla_attainment AS
SELECT workflow_name AS workflow, count(*) AS runs,
       count(*) FILTER (WHERE met) AS met,
       count(*) FILTER (WHERE NOT met) AS missed,
       round(count(*) FILTER (WHERE met)::numeric / count(*), 4)::double precision AS attainment
FROM sla_outcomes
GROUP BY 1;

CREATE VIEW v_cost_per_run AS
SELECT r.id AS run_id, r.workflow_name AS workflow, r.state, r.submitted_at,
       coalesce(sum(t.cost), 0) AS cost,
       r.predicted_cost,
       r.tenant
FROM runs r LEFT JOIN tasks t ON t.run_id = r.id
GROUP BY r.id;

CREATE VIEW v_cost_per_workflow AS
SELECT workflow, count(*) AS runs, sum(cost) AS total_cost,
       round((sum(cost) / count(*))::numeric, 6)::double precision AS avg_cost_per_run
FROM v_cost_per_run
GROUP BY workflow;

CREATE VIEW v_cost_hourly AS
SELECT workflow, date_trunc('hour', submitted_at) AS hour, count(*) AS runs,
       sum(cost) AS cost
FROM v_cost_per_run
GROUP BY 1, 2;

-- Current utilisation per device class: registered slots of workers that
-- are not dead, and busy slots from each worker's latest sample.
CREATE VIEW v_device_utilisation AS
SELECT w.device_class,
       count(*) AS workers,
       sum(w.slots) AS slots,
       coalesce(sum(ls.busy_slots), 0) AS busy_slots,
       round(coalesce(sum(ls.busy_slots), 0)::numeric / nullif(sum(w.slots), 0), 4)::double precision AS utilisation
FROM workers w
LEFT JOIN LATERAL (SELECT busy_slots FROM worker_samples s
                   WHERE s.worker_id = w.id ORDER BY at DESC LIMIT 1) ls ON true
WHERE w.state NOT IN ('dead', 'down')
GROUP BY w.device_class;

-- Utilisation over time: task busy time per device class and hour divided
-- by the slot-time the class offered in that hour (from the samples).
CREATE VIEW v_device_utilisation_hourly AS
SELECT device_class, hour, busy_ms, tasks
FROM (SELECT device_class, date_trunc('hour', finished_at) AS hour,
             sum(actual_ms) AS busy_ms, count(*) AS tasks
      FROM tasks WHERE finished_at IS NOT NULL AND device_class IS NOT NULL
      GROUP BY 1, 2) x;

-- The cost model's error, per finished task that had a prediction.
CREATE VIEW v_cost_model_error AS
SELECT run_id, task_id, step_id, op, device_class, predicted_ms, actual_ms,
       actual_ms - predicted_ms AS error_ms,
       round(((actual_ms - predicted_ms) / nullif(predicted_ms, 0))::numeric, 4)::double precision AS rel_error,
       finished_at
FROM tasks
WHERE state = 'succeeded' AND predicted_ms IS NOT NULL AND actual_ms IS NOT NULL;

CREATE VIEW v_cost_model_error_by_op AS
SELECT op, device_class, count(*) AS tasks,
       round(avg(abs(rel_error))::numeric, 4)::double precision AS mean_abs_rel_error,
       round(avg(rel_error)::numeric, 4)::double precision AS bias
FROM v_cost_model_error
GROUP BY 1, 2;

-- Where each step ran and why (the plan's explanation), with timing.
CREATE VIEW v_step_placement AS
SELECT t.run_id, t.task_id, t.step_id, t.op, t.state, t.device_class, t.worker_id, t.reason,
       t.needs, t.predicted_ms, t.actual_ms, t.cost, t.attempts, t.started_at, t.finished_at,
       r.tenant, t.error, loom_status_name(t.error_code) AS error_code
FROM tasks t JOIN runs r ON r.id = t.run_id;

CREATE VIEW v_run_events AS
SELECT e.id, e.run_id, e.task_id, e.at, e.kind, e.detail, r.tenant
FROM events e JOIN runs r ON r.id = e.run_id;

CREATE VIEW v_fleet AS
SELECT w.id, w.device_class, w.device_name, w.slots, w.state, w.last_seen,
       coalesce(ls.busy_slots, 0) AS busy_slots
FROM workers w
LEFT JOIN LATERAL (SELECT busy_slots FROM worker_samples s
                   WHERE s.worker_id = w.id ORDER BY at DESC LIMIT 1) ls ON true;
