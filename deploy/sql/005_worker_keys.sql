-- Worker id -> CURVE key bindings (issue 10, docs/SECURITY.md): the key
-- that first registered a worker id owns it, across loomd restarts; another
-- admitted key claiming the id is refused while this key stays admitted.
-- curve_key is the public key in Z85 (40 characters), never a secret.
CREATE TABLE IF NOT EXISTS worker_keys (
    worker_id  text PRIMARY KEY,
    curve_key  text NOT NULL CHECK (length(curve_key) = 40),
    bound_at   timestamptz NOT NULL DEFAULT now()
);
