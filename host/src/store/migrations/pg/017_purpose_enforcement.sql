-- PostgreSQL form of ../017_purpose_enforcement.sql (klar's store, version
-- 17): how strict each purpose is about use (after the enforcement models of
-- Dynamics 365). `restrictive`, the default and what klar always did: a
-- contact may be used only with their consent or another recorded basis.
-- `non-restrictive`: usable unless the contact said no (refused, withdrew)
-- or their data is being cleaned up.
ALTER TABLE purposes ADD COLUMN enforcement TEXT NOT NULL DEFAULT 'restrictive'
    CHECK (enforcement IN ('restrictive', 'non-restrictive'));
