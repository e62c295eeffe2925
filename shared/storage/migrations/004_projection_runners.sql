-- The instances of a service folding its projections: each claims its share of the units
-- (stream-hash segments) by advisory lock; a heartbeat here tells them how many share.
CREATE TABLE projection_runners (
    instance text        PRIMARY KEY,
    seen_at  timestamptz NOT NULL DEFAULT now()
);
