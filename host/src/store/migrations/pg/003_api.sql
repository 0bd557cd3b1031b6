-- PostgreSQL form of ../003_api.sql (klar's store, version 3): what
-- `klar serve` needs.

-- Per-tenant API keys. Only the key's SHA-256 is stored; the key is shown once.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

-- Answers to requests sent with an Idempotency-Key, so a retried call gets
-- the same answer and changes nothing the second time.
CREATE TABLE idempotency (
    tenant      TEXT NOT NULL,
    key         TEXT NOT NULL,
    request     TEXT NOT NULL,
    status      BIGINT NOT NULL,
    response    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant, key)
);
