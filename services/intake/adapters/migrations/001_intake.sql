-- Intake keeps only the kernel's tables (events, checkpoints, inbox, documents).
CREATE INDEX IF NOT EXISTS documents_client ON documents (projection, (doc->>'client_id'));
