-- The first schema: contacts, one row per scheduled email, and what contacts did (events).
CREATE TABLE contacts (
    email text PRIMARY KEY,
    fields jsonb NOT NULL DEFAULT '{}',
    segment text,
    suppressed boolean NOT NULL DEFAULT false,
    suppressed_reason text,
    updated_at timestamptz,
    consent text
);
CREATE TABLE emails (
    id text PRIMARY KEY,  -- enrollment key + step: a second enrollment of the same contact cannot add a row twice
    enrollment_key text NOT NULL,
    email text NOT NULL,
    sequence text NOT NULL,
    step integer NOT NULL,
    template text NOT NULL,
    sender text NOT NULL,
    due timestamptz NOT NULL,
    state text NOT NULL,
    sent_at timestamptz,
    message_id text,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    note text,
    data jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX emails_state_due ON emails (state, due, id);
CREATE INDEX emails_enrollment ON emails (enrollment_key, step);
CREATE INDEX emails_contact ON emails (email, sequence);
CREATE TABLE events (
    key text NOT NULL,
    email text NOT NULL,
    name text NOT NULL,
    at timestamptz NOT NULL,
    data jsonb NOT NULL DEFAULT '{}',
    recorded_at timestamptz,
    PRIMARY KEY (email, key)
);
CREATE INDEX events_name ON events (name, email);
