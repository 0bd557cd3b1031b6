-- klar's store, version 1. Times are Unix seconds (UTC).

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    timezone    TEXT NOT NULL,
    locale      TEXT NOT NULL,
    -- Salt for the tombstones' hashes of erased addresses.
    salt        BLOB NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE purposes (
    tenant      TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) STRICT;

CREATE TABLE policy_versions (
    tenant      TEXT NOT NULL REFERENCES tenants(id),
    version     INTEGER NOT NULL,
    source      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    author      TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    active      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, version)
) STRICT;

CREATE UNIQUE INDEX policy_versions_one_active ON policy_versions (tenant) WHERE active = 1;

CREATE TABLE contacts (
    tenant      TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    email       TEXT,
    phone       TEXT,
    owner       TEXT NOT NULL,
    source      TEXT NOT NULL,
    language    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    -- Further CRM columns, as a JSON object of text.
    attributes  TEXT NOT NULL DEFAULT '{}',
    erased_at   INTEGER,
    PRIMARY KEY (tenant, id)
) STRICT;

CREATE TABLE cases (
    tenant      TEXT NOT NULL,
    contact     TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    state       TEXT NOT NULL,
    band        TEXT NOT NULL,
    -- The whole case as the plugin sees it (JSON of klar_plugin::Case).
    body        TEXT NOT NULL,
    due_at      INTEGER,
    -- The error of the last failed step; NULL when the case is healthy.
    needs_attention TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, contact, purpose),
    FOREIGN KEY (tenant, contact) REFERENCES contacts(tenant, id),
    FOREIGN KEY (tenant, purpose) REFERENCES purposes(tenant, id)
) STRICT;

-- The scheduler asks "which cases are due?" without scanning every case.
CREATE INDEX cases_due ON cases (due_at) WHERE due_at IS NOT NULL;

CREATE TABLE evidence (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT NOT NULL,
    contact     TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    -- Channel, token id, text version and its sha256, IP, user agent...
    detail      TEXT NOT NULL
) STRICT;

CREATE INDEX evidence_by_contact ON evidence (tenant, contact);

-- Append-only; each row carries the hash of the tenant's previous row.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    contact     TEXT,
    purpose     TEXT,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    policy_sha256 TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    UNIQUE (tenant, seq)
) STRICT;

CREATE TABLE outbox (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    contact     TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    acked_at    INTEGER,
    UNIQUE (tenant, seq)
) STRICT;

CREATE TABLE tombstones (
    tenant      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind, hash)
) STRICT;
