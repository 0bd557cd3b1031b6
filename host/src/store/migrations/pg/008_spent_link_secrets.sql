-- PostgreSQL form of ../008_spent_link_secrets.sql.
-- A response link's secret leaves klar once, to whoever delivers the request.
-- Once an action is acknowledged (by the CRM, by a webhook receiver's 2xx, by
-- klar's own mailer, or by withdrawal) its payload keeps only the token id.
-- Older stores kept the secret in acknowledged payloads; drop it.
--
-- SQLite: json_remove(payload, '$.token') WHERE json_type(payload, '$.token')
-- IS NOT NULL. Here: the jsonb `-` operator, cast back to text; `-> 'token'`
-- is SQL NULL exactly where json_type() was (no such key, or not an object),
-- and JSON null where json_type() said 'null'. (No `?` key operator: the Rust
-- side rewrites placeholders, so the SQL stays free of bare question marks.)
--
-- The text differs in form from SQLite's: json_remove() keeps the object's
-- key order and writes compact JSON ({"token_id":"t1"}), jsonb::text orders
-- the keys (shorter first) and puts a space after ':' and ',' ({"token_id":
-- "t1"}). Same JSON value; serde reads both. A new PostgreSQL store has no
-- rows here anyway.
UPDATE outbox SET payload = (payload::jsonb - 'token')::text
    WHERE acked_at IS NOT NULL AND (payload::jsonb -> 'token') IS NOT NULL;
