-- PostgreSQL form of ../012_import_batches.sql.
-- A bulk import writes one audit row for all the contacts it adds, instead
-- of a `contact-added` and a `case-opened` row for each: the row (kind
-- `import`) commits to the file's SHA-256 and to the root of a Merkle tree
-- over the added ids in file order (see `merkle.rs`). Each added contact
-- keeps the number of its import and its place among those ids, so that
-- its evidence bundle can prove through the chain when and from which
-- import it arrived.
CREATE TABLE imports (
    tenant      TEXT NOT NULL,
    n           BIGINT NOT NULL,
    -- The import's audit row, written when the import ends.
    audit_seq   BIGINT,
    PRIMARY KEY (tenant, n)
);

ALTER TABLE contacts ADD COLUMN imported_in BIGINT;
ALTER TABLE contacts ADD COLUMN import_pos BIGINT;
CREATE INDEX contacts_import ON contacts (tenant, imported_in, import_pos)
    WHERE imported_in IS NOT NULL;
