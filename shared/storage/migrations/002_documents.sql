-- Read models: one JSON document per (projection, id), rebuilt from the log at will.
CREATE TABLE documents (
    projection text    NOT NULL,
    id         text    NOT NULL,
    doc        jsonb   NOT NULL,
    version    integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, id)
);
CREATE INDEX documents_coach ON documents (projection, (doc->>'coach_id'));
