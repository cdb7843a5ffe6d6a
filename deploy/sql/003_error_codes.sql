-- Error codes next to the messages (issue 11): a run's and a task's
-- loom.v1.StatusCode (envelope.proto; e.g. 4 DEADLINE_EXCEEDED, 1
-- CANCELLED, 14 UNAVAILABLE), so a restarted loomd and the dashboard report
-- the same Error.code as the loomd that ran it. NULL: rows from before this
-- migration, or no error; readers then derive it from the state.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS error_code integer;
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS error_code integer;
