CREATE INDEX IF NOT EXISTS documents_recipient ON documents (projection, (doc->>'recipient'));
