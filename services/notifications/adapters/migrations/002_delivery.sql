-- Webhook configuration and the delivery queue. Operational state beside the log: every
-- decision (scheduled, dispatched, each attempt, delivered, failed) is also an event.
CREATE TABLE webhooks (
    webhook_id  uuid PRIMARY KEY,
    recipient   text        NOT NULL,
    url         text        NOT NULL,
    secret      text        NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX webhooks_recipient ON webhooks (recipient);

-- Notifications waiting to fall due; written with their NotificationScheduled event.
CREATE TABLE notification_queue (
    notification_id uuid PRIMARY KEY,
    engagement_id   text        NOT NULL,
    kind            text        NOT NULL,
    recipient       text        NOT NULL,
    due_at          timestamptz NOT NULL,
    due_at_text     text        NOT NULL,
    created_at_text text        NOT NULL,
    dispatched_at   timestamptz,
    lease_until     timestamptz
);
CREATE INDEX notification_queue_due ON notification_queue (due_at) WHERE dispatched_at IS NULL;
CREATE INDEX notification_queue_recipient ON notification_queue (recipient, due_at)
    WHERE dispatched_at IS NULL;

-- One row per (notification, webhook): claimed with FOR UPDATE SKIP LOCKED under a lease.
CREATE TABLE deliveries (
    notification_id uuid        NOT NULL REFERENCES notification_queue (notification_id),
    webhook_id      uuid        NOT NULL REFERENCES webhooks (webhook_id),
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    locked_until    timestamptz,
    claim           uuid,
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notification_id, webhook_id)
);
CREATE INDEX deliveries_due ON deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';

-- Engagement events that arrived before the engagement's parties were known.
CREATE TABLE parked_events (
    event_id      uuid PRIMARY KEY,
    engagement_id text        NOT NULL,
    envelope      json        NOT NULL,
    parked_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parked_events_engagement ON parked_events (engagement_id);
