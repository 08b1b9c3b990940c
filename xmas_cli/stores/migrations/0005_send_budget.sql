-- The sending budget every tick runner of the campaign shares (mailers/pacer.py, stores/pg_budget.py): one row per
-- provider account, holding the last request slot handed out (on the server's clock, so runners on many machines
-- agree), until when a 429's retry-after holds every runner, and the limit (requests per second) the provider's
-- answers last stated, so the next tick starts from it rather than from the configured rate.
CREATE TABLE send_budget (
    name TEXT PRIMARY KEY,
    last_at TIMESTAMPTZ,
    held_until TIMESTAMPTZ,
    stated_limit DOUBLE PRECISION CHECK (stated_limit > 0)
);
