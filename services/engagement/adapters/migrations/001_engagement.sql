-- Engagement keeps the kernel's tables; stage views are documents of projection 'stage_view'.
CREATE INDEX IF NOT EXISTS documents_stage ON documents (projection, (doc->>'coach_id'), (doc->>'stage'));
