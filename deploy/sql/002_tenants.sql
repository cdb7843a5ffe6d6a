-- Runs carry their tenant (issue 10, docs/SECURITY.md): the tenant of the
-- token that submitted them; "default" for runs from before tenants and
-- for loomd without tokens. Get/List/Watch/Cancel filter on it.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default';
CREATE INDEX IF NOT EXISTS runs_tenant_submitted ON runs (tenant, submitted_at);
