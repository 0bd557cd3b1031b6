-- PostgreSQL form of ../011_cockpit_speed.sql.
-- The cockpit on a million cases: counts kept by triggers instead of scans,
-- and indexes for what its pages ask.
--
-- JSON expression indexes. SQLite indexes json_extract(body, '$.a'); here the
-- column stays TEXT and the index is on (body::jsonb ->> 'a'), for a nested
-- path (body::jsonb -> 'a' ->> 'b'). PostgreSQL uses such an index only
-- when the query writes the very same expression (an alias such as `c.` in
-- front of `body` is fine, `#>> '{a,b}'` or json_extract_path_text() is NOT
-- the same expression), and a partial index only when the query's WHERE
-- contains the index's condition. What the PG queries must say:
--
--   cases_assigned    WHERE tenant = $1 AND (body::jsonb ->> 'assigned_to') = $2
--                     (an equality on the expression implies its IS NOT NULL)
--   cases_unassigned  WHERE tenant = $1 AND state = 'awaiting-decision'
--                       AND (body::jsonb ->> 'assigned_to') IS NULL
--   cases_cleanup     WHERE tenant = $1 AND state = 'cleanup-pending', reading
--                       (body::jsonb ->> 'legal_hold'),
--                       (body::jsonb -> 'cleanup' ->> 'requires_approval'),
--                       (body::jsonb -> 'cleanup' ->> 'approved_by'),
--                       (body::jsonb -> 'cleanup' ->> 'requested_by')
--
-- `->>` gives text: JSON true/false come out as 'true'/'false' (SQLite's
-- json_extract gives the integers 1/0), so a truth test is
-- (body::jsonb ->> 'legal_hold') = 'true', not a bare expression. JSON null
-- and a missing key are both SQL NULL, as with json_extract. Unlike SQLite,
-- PostgreSQL will not answer the cleanup preview from `cases_cleanup` alone
-- (no index-only scan over expressions that are not plain columns): it
-- reads the matching cases' rows. A body that is not valid JSON fails the
-- write in both databases (the expressions are evaluated on insert/update).

-- Cases per tenant, state and band, kept exact by the triggers below in the
-- same transaction as every write to `cases`. (SQLite: WITHOUT ROWID; a
-- PostgreSQL table is a heap with its primary key index either way.)
CREATE TABLE case_counts (
    tenant  TEXT NOT NULL,
    state   TEXT NOT NULL,
    band    TEXT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (tenant, state, band)
);

INSERT INTO case_counts (tenant, state, band, n)
SELECT tenant, state, band, COUNT(*) FROM cases GROUP BY tenant, state, band;

-- SQLite's triggers are row triggers with their statements inline; here each
-- is a PL/pgSQL function (of the trigger's name) and an AFTER ... FOR EACH
-- ROW trigger that calls it.
CREATE FUNCTION case_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO case_counts (tenant, state, band, n) VALUES (NEW.tenant, NEW.state, NEW.band, 1)
    ON CONFLICT (tenant, state, band) DO UPDATE SET n = case_counts.n + 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER case_counts_insert AFTER INSERT ON cases
    FOR EACH ROW EXECUTE FUNCTION case_counts_insert();

CREATE FUNCTION case_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE case_counts SET n = n - 1
    WHERE tenant = OLD.tenant AND state = OLD.state AND band = OLD.band;
    RETURN NULL;
END;
$$;

CREATE TRIGGER case_counts_delete AFTER DELETE ON cases
    FOR EACH ROW EXECUTE FUNCTION case_counts_delete();

-- SQLite's `old.x IS NOT new.x` is PostgreSQL's IS DISTINCT FROM.
CREATE FUNCTION case_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE case_counts SET n = n - 1
    WHERE tenant = OLD.tenant AND state = OLD.state AND band = OLD.band;
    INSERT INTO case_counts (tenant, state, band, n) VALUES (NEW.tenant, NEW.state, NEW.band, 1)
    ON CONFLICT (tenant, state, band) DO UPDATE SET n = case_counts.n + 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER case_counts_update AFTER UPDATE OF tenant, state, band ON cases
    FOR EACH ROW
    WHEN (OLD.tenant IS DISTINCT FROM NEW.tenant OR OLD.state IS DISTINCT FROM NEW.state
          OR OLD.band IS DISTINCT FROM NEW.band)
    EXECUTE FUNCTION case_counts_update();

-- Deadlines (overdue, due soon, on time) as index range counts.
CREATE INDEX cases_deadline ON cases (tenant, due_at) WHERE due_at IS NOT NULL;
-- Failed cases.
CREATE INDEX cases_attention ON cases (tenant, contact, purpose) WHERE needs_attention IS NOT NULL;
-- Whom a case waits for: the queue's "mine" and decisions waiting per person.
CREATE INDEX cases_assigned ON cases (tenant, (body::jsonb ->> 'assigned_to'), state)
    WHERE (body::jsonb ->> 'assigned_to') IS NOT NULL;
-- Decisions waiting for nobody in particular (the standard plugin always
-- assigns them; another plugin may not): the queue looks them up by owner.
CREATE INDEX cases_unassigned ON cases (tenant)
    WHERE state = 'awaiting-decision' AND (body::jsonb ->> 'assigned_to') IS NULL;
-- The cleanup preview: pending cleanups by when they may run, on hold or
-- waiting for an approval.
CREATE INDEX cases_cleanup ON cases (
    tenant,
    state,
    due_at,
    (body::jsonb ->> 'legal_hold'),
    (body::jsonb -> 'cleanup' ->> 'requires_approval'),
    (body::jsonb -> 'cleanup' ->> 'approved_by'),
    (body::jsonb -> 'cleanup' ->> 'requested_by')
) WHERE state = 'cleanup-pending';
-- The queue's owner and source filters offer the distinct values.
CREATE INDEX contacts_owner ON contacts (tenant, owner);
CREATE INDEX contacts_source ON contacts (tenant, source);
-- Parked deliveries.
CREATE INDEX outbox_parked ON outbox (tenant) WHERE parked_at IS NOT NULL AND acked_at IS NULL;

-- The funnel of request waves, as the first tick of each day computed it
-- (JSON, as TEXT): reading every link of a million cases is for once a day.
CREATE TABLE funnel_days (
    tenant  TEXT NOT NULL,
    day     TEXT NOT NULL,
    waves   TEXT NOT NULL,
    PRIMARY KEY (tenant, day)
);
