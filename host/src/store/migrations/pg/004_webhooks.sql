-- PostgreSQL form of ../004_webhooks.sql (klar's store, version 4):
-- delivering the outbox by webhook.

-- One receiving URL per tenant; the secret signs each delivery (HMAC-SHA256),
-- so it is kept as is.
CREATE TABLE webhooks (
    tenant      TEXT PRIMARY KEY REFERENCES tenants(id),
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Delivery state of each action: failed attempts, when to try next
-- (milliseconds, wall clock), and when klar gave up (parked).
ALTER TABLE outbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_attempt_ms BIGINT;
ALTER TABLE outbox ADD COLUMN parked_at BIGINT;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
