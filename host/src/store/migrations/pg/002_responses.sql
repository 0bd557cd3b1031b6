-- PostgreSQL form of ../002_responses.sql (klar's store, version 2): what a
-- contact is asked to agree to, the personal response links, and how long
-- evidence is kept after an erasure.

-- The consent text per purpose and language, versioned. A response records the
-- version and SHA-256 of the text the contact was shown.
CREATE TABLE consent_texts (
    tenant      TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    version     BIGINT NOT NULL,
    language    TEXT NOT NULL,
    body        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant, purpose, version, language),
    FOREIGN KEY (tenant, purpose) REFERENCES purposes(tenant, id)
);

-- One row per request sent. The token itself is never stored here, only its
-- SHA-256, so that a copy of the database cannot answer for anyone.
--
-- SQLite gives this table a hidden rowid, and klar uses it: `tokens.rs`
-- numbers each token by `MAX(rowid) + 1` and inserts that number as `rowid`
-- (it leads the secret and makes the id `r%015d`). PostgreSQL has no rowid
-- and this table has the same columns as in SQLite; the numbers come from
-- the sequence below, which several klar instances can draw from at once.
CREATE SEQUENCE response_token_rows;

CREATE TABLE response_tokens (
    -- Public, for evidence and logs: the first 16 hex digits of the hash.
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    tenant      TEXT NOT NULL,
    contact     TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    channel     TEXT NOT NULL,
    text_version BIGINT NOT NULL,
    language    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    -- Set when this token was answered, or when another answer made it moot.
    used_at     BIGINT,
    FOREIGN KEY (tenant, contact, purpose) REFERENCES cases(tenant, contact, purpose)
);

CREATE INDEX response_tokens_by_case ON response_tokens (tenant, contact, purpose);

-- Evidence outlives the erasure of the person it concerns, but not forever.
ALTER TABLE evidence ADD COLUMN retain_until BIGINT;
CREATE INDEX evidence_expiry ON evidence (retain_until) WHERE retain_until IS NOT NULL;

-- Per tenant first: the scheduler asks per tenant.
DROP INDEX cases_due;
CREATE INDEX cases_due ON cases (tenant, due_at) WHERE due_at IS NOT NULL AND needs_attention IS NULL;
