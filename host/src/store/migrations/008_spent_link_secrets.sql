-- A response link's secret leaves klar once, to whoever delivers the request.
-- Once an action is acknowledged (by the CRM, by a webhook receiver's 2xx, by
-- klar's own mailer, or by withdrawal) its payload keeps only the token id.
-- Older stores kept the secret in acknowledged payloads; drop it.
UPDATE outbox SET payload = json_remove(payload, '$.token')
    WHERE acked_at IS NOT NULL AND json_type(payload, '$.token') IS NOT NULL;
