-- Idempotency records expire (`shared.idempotency`): the pruner finds the expired ones by age.
-- `request_hash` is `v2:<hmac-sha256>` from now on; rows written before hold a plain SHA-256
-- of the request body, still compared as such until the pruner removes them.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
