-- PostgreSQL form of ../014_text_authors.sql.
-- Consent texts written by the company's legal team (`klar text set`): who
-- wrote a version and why, and the text as written, with its placeholders
-- (`{company}`, `{purpose}`). `body` stays what contacts read, with the
-- placeholders filled in when the version was set; its SHA-256 is the one
-- evidence names. klar's standard texts have no author (NULL).
ALTER TABLE consent_texts ADD COLUMN author TEXT;
ALTER TABLE consent_texts ADD COLUMN message TEXT;
ALTER TABLE consent_texts ADD COLUMN source TEXT;
