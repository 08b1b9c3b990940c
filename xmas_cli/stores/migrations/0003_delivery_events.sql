-- What happened to each sent email (Resend's delivery events), found by the provider's email id, and the subject
-- variant it went with; the report counts them in SQL.
ALTER TABLE emails ADD COLUMN delivery jsonb;
ALTER TABLE emails ADD COLUMN variant integer;
CREATE INDEX emails_message ON emails (message_id);
CREATE INDEX emails_sent ON emails (sequence, step, sent_at) WHERE state = 'Sent';
