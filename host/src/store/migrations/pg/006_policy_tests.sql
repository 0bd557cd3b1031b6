-- PostgreSQL form of ../006_policy_tests.sql (klar's store, version 6): a
-- policy version keeps the tests it passed when it became active. klar then
-- knows whether the active version is tested (a version without tests
-- replaces a tested one only on purpose, with a reason in the audit log), and
-- a rollback runs the old version's tests again.
-- NULL: the version became active without tests, as did every version
-- stored before this migration (klar did not keep their tests).
ALTER TABLE policy_versions ADD COLUMN tests TEXT;
