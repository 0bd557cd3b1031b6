-- PostgreSQL form of ../016_templates.sql.
-- A tenant's own mail and page templates (`klar template set`), in place of
-- the built-in ones; each change is in the audit log with its SHA-256.
CREATE TABLE templates (
    tenant      TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    source      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    author      TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);
