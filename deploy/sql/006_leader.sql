-- loomd failover (orchestrator/lease_pg.c, deploy/README.md "High
-- availability"): several loomd share one database; the one holding the
-- leader advisory lock is the leader. On taking the lock it increments
-- `epoch` here and stamps its endpoints (standbys point clients and workers
-- at them). Every write transaction of a leader begins with
-- loom_fence(its epoch): the row lock it takes makes the next leader's
-- increment wait for that transaction, and once the increment committed a
-- deposed leader's writes fail (SQLSTATE LM001) instead of landing.
-- The leader renews `renewed` every second while its event loop turns; a
-- standby that finds it older than the lease TTL ends the session holding
-- the lock (`lease_pid`), so a hung or stopped leader is replaced too.
CREATE TABLE IF NOT EXISTS loom_leader (
    id              integer PRIMARY KEY CHECK (id = 1),
    epoch           bigint NOT NULL DEFAULT 0,
    holder          text NOT NULL DEFAULT '',   -- loomd's id (host/pid)
    client_endpoint text NOT NULL DEFAULT '',   -- where clients reach it
    worker_endpoint text NOT NULL DEFAULT '',   -- where workers reach it
    since           timestamptz,                -- when it took the lead
    renewed         timestamptz,                -- its last renewal
    lease_pid       integer                     -- its lease session's backend pid
);
INSERT INTO loom_leader (id) VALUES (1) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION loom_fence(e bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM loom_leader WHERE id = 1 AND epoch = e FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'loomd epoch % is no longer the leader', e
            USING ERRCODE = 'LM001';
    END IF;
END $$;
