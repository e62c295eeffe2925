-- Where the relay's records landed, per partition: the next offset the broker must be past.
-- A broker answering lower offsets than these has lost the topic's history.
CREATE TABLE outbox_offsets (
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (topic, partition)
);

-- Events a projection or a consumer could not apply: set aside (not stalling the others),
-- counted, and retried or skipped by an admin. A consumer's entry keeps the raw message.
CREATE TABLE parked (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('projection', 'consumer')),
    name        text        NOT NULL,
    event_id    text        NOT NULL,
    stream_id   text,
    event_type  text,
    position    bigint,
    topic       text,
    message_key bytea,
    message     bytea       NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '[]',
    error       text        NOT NULL,
    status      text        NOT NULL DEFAULT 'parked'
                CHECK (status IN ('parked', 'retried', 'skipped')),
    attempts    integer     NOT NULL DEFAULT 1,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    UNIQUE (kind, name, event_id)
);
CREATE INDEX parked_open ON parked (status, id);
