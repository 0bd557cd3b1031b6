-- PostgreSQL form of ../009_key_scopes.sql.
-- API keys get a scope: `crm` keys reach contacts, events, use, cases and the
-- outbox; `admin` keys also manage keys, the webhook and the policy. Keys made
-- before scopes existed could do everything, so they become `admin`; new keys
-- are `crm` unless asked otherwise.
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin'
    CHECK (scope IN ('crm', 'admin'));
