-- Webhook URLs never keep credentials (`user:password@`): registration refuses them now, and
-- the rows registered before lose theirs here rather than keep them in plaintext (a delivery
-- is authenticated by its signature). The userinfo is what precedes the last `@` of the
-- authority, as urllib and httpx read it.
UPDATE webhooks
SET url = regexp_replace(url, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\1')
WHERE url ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@';
