-- Many tick runners: the batch journal, with the runner that owns each entry and until when (its lease), and a
-- claim on each row a runner is working on, so runners on many machines share the due rows without a file lock.
CREATE TABLE batches (
    key text PRIMARY KEY,
    row_ids jsonb NOT NULL,
    emails text NOT NULL,  -- the rendered emails exactly as sent (journal.py): a takeover sends these bytes
    opened_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    retry_at timestamptz,
    last_error text,
    owner text,
    lease_until timestamptz
);
ALTER TABLE emails ADD COLUMN batch text;
ALTER TABLE emails ADD COLUMN claimed_by text;
ALTER TABLE emails ADD COLUMN claim_until timestamptz;
-- the next due row of each contact, in the order runners claim them
CREATE INDEX emails_contact_due ON emails (email, due, id) WHERE state = 'Scheduled';
