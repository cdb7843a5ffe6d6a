-- Runs carry their submitter's labels (issue 17): a JSON object of
-- strings, filterable in List (`labels @> '{"team": "ops"}'`).
ALTER TABLE runs ADD COLUMN IF NOT EXISTS labels jsonb;
CREATE INDEX IF NOT EXISTS runs_labels ON runs USING gin (labels);
