-- PostgreSQL form of ../015_tenant_settings.sql.
-- Tenant settings beyond name, zone and language (`klar tenant set`):
-- who gets a task when a contact has no owner, and the company's legal
-- details (address, managing directors, register entry, imprint and
-- privacy-notice URLs) as one JSON object (TEXT), shown on the response page
-- and under every mail.
ALTER TABLE tenants ADD COLUMN default_owner TEXT;
ALTER TABLE tenants ADD COLUMN legal TEXT NOT NULL DEFAULT '{}';

-- The tenant's calendar: its region (a German state such as DE-BW, whose
-- public holidays are not business days) and its own closure days (a JSON
-- list of "12-24" for every year or "2026-12-28" for one day, as TEXT).
ALTER TABLE tenants ADD COLUMN region TEXT;
ALTER TABLE tenants ADD COLUMN closure_days TEXT NOT NULL DEFAULT '[]';
