-- PostgreSQL form of ../010_accounts.sql.
-- The cockpit's people: accounts per tenant, their one-time sign-up links and
-- their sessions. Secrets (sign-up links, session ids) are kept
-- only as SHA-256; passwords only as Argon2id hashes (PHC strings).
CREATE TABLE accounts (
    tenant        TEXT NOT NULL REFERENCES tenants(id),
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    email         TEXT,
    -- Space-separated, from: viewer owner approver admin.
    roles         TEXT NOT NULL,
    -- The cockpit's and the digest's language: de or en.
    language      TEXT NOT NULL DEFAULT 'de',
    -- 0 or 1, as in SQLite (not BOOLEAN: the code binds and reads integers).
    digest        BIGINT NOT NULL DEFAULT 1,
    -- The ISO week (2026-W49) of the last weekly digest mailed.
    digest_week   TEXT,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE signup_links (
    hash        TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    account     TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    FOREIGN KEY (tenant, account) REFERENCES accounts(tenant, id)
);

CREATE TABLE sessions (
    hash         TEXT PRIMARY KEY,
    tenant       TEXT NOT NULL,
    account      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ended_at     BIGINT,
    FOREIGN KEY (tenant, account) REFERENCES accounts(tenant, id)
);

-- Failed sign-ins of the last minutes, for the throttle (the audit log keeps
-- them for good). Old rows are deleted as new ones come.
CREATE TABLE sign_in_failures (
    tenant  TEXT NOT NULL,
    account TEXT NOT NULL,
    address TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX sign_in_failures_by_account ON sign_in_failures (tenant, account, at);
CREATE INDEX sign_in_failures_by_address ON sign_in_failures (address, at);

-- The queue's "assigned to me" and the overview's counts read cases by
-- tenant and state without scanning other tenants.
CREATE INDEX cases_tenant_state ON cases (tenant, state, due_at);

-- The overview's funnel: when a link was first opened, when its request
-- bounced, and the answer given through it.
ALTER TABLE response_tokens ADD COLUMN opened_at BIGINT;
ALTER TABLE response_tokens ADD COLUMN bounced_at BIGINT;
ALTER TABLE response_tokens ADD COLUMN answer TEXT;

-- A case's audit rows (its page, its funnel milestones) without a scan.
CREATE INDEX audit_by_case ON audit_log (tenant, contact, purpose) WHERE contact IS NOT NULL;

-- The overview's trend: the bands as the first tick of each day found them.
CREATE TABLE band_days (
    tenant      TEXT NOT NULL,
    day         TEXT NOT NULL,
    usable      BIGINT NOT NULL,
    to_clarify  BIGINT NOT NULL,
    removed     BIGINT NOT NULL,
    PRIMARY KEY (tenant, day)
);
