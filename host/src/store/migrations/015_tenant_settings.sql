-- Tenant settings beyond name, zone and language (`klar tenant set`):
-- who gets a task when a contact has no owner, and the company's legal
-- details (address, managing directors, register entry, imprint and
-- privacy-notice URLs) as one JSON object, shown on the response page and
-- under every mail.
ALTER TABLE tenants ADD COLUMN default_owner TEXT;
ALTER TABLE tenants ADD COLUMN legal TEXT NOT NULL DEFAULT '{}';
