-- The cockpit on a million cases: counts kept by triggers instead of scans,
-- and indexes for what its pages ask.

-- Cases per tenant, state and band, kept exact by the triggers below in the
-- same transaction as every write to `cases`.
CREATE TABLE case_counts (
    tenant  TEXT NOT NULL,
    state   TEXT NOT NULL,
    band    TEXT NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (tenant, state, band)
) STRICT, WITHOUT ROWID;

INSERT INTO case_counts (tenant, state, band, n)
SELECT tenant, state, band, COUNT(*) FROM cases GROUP BY tenant, state, band;

CREATE TRIGGER case_counts_insert AFTER INSERT ON cases BEGIN
    INSERT INTO case_counts (tenant, state, band, n) VALUES (new.tenant, new.state, new.band, 1)
    ON CONFLICT (tenant, state, band) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER case_counts_delete AFTER DELETE ON cases BEGIN
    UPDATE case_counts SET n = n - 1
    WHERE tenant = old.tenant AND state = old.state AND band = old.band;
END;

CREATE TRIGGER case_counts_update AFTER UPDATE OF tenant, state, band ON cases
WHEN old.tenant IS NOT new.tenant OR old.state IS NOT new.state OR old.band IS NOT new.band
BEGIN
    UPDATE case_counts SET n = n - 1
    WHERE tenant = old.tenant AND state = old.state AND band = old.band;
    INSERT INTO case_counts (tenant, state, band, n) VALUES (new.tenant, new.state, new.band, 1)
    ON CONFLICT (tenant, state, band) DO UPDATE SET n = n + 1;
END;

-- Deadlines (overdue, due soon, on time) as index range counts.
CREATE INDEX cases_deadline ON cases (tenant, due_at) WHERE due_at IS NOT NULL;
-- Failed cases.
CREATE INDEX cases_attention ON cases (tenant, contact, purpose) WHERE needs_attention IS NOT NULL;
-- Whom a case waits for: the queue's "mine" and decisions waiting per person.
CREATE INDEX cases_assigned ON cases (tenant, json_extract(body, '$.assigned_to'), state)
    WHERE json_extract(body, '$.assigned_to') IS NOT NULL;
-- Decisions waiting for nobody in particular (the standard plugin always
-- assigns them; another plugin may not): the queue looks them up by owner.
CREATE INDEX cases_unassigned ON cases (tenant)
    WHERE state = 'awaiting-decision' AND json_extract(body, '$.assigned_to') IS NULL;
-- The cleanup preview: pending cleanups by when they may run, on hold or
-- waiting for an approval, without reading the cases.
CREATE INDEX cases_cleanup ON cases (
    tenant,
    state,
    due_at,
    json_extract(body, '$.legal_hold'),
    json_extract(body, '$.cleanup.requires_approval'),
    json_extract(body, '$.cleanup.approved_by'),
    json_extract(body, '$.cleanup.requested_by')
) WHERE state = 'cleanup-pending';
-- The queue's owner and source filters offer the distinct values.
CREATE INDEX contacts_owner ON contacts (tenant, owner);
CREATE INDEX contacts_source ON contacts (tenant, source);
-- Parked deliveries.
CREATE INDEX outbox_parked ON outbox (tenant) WHERE parked_at IS NOT NULL AND acked_at IS NULL;

-- The funnel of request waves, as the first tick of each day computed it
-- (JSON): reading every link of a million cases is for once a day.
CREATE TABLE funnel_days (
    tenant  TEXT NOT NULL,
    day     TEXT NOT NULL,
    waves   TEXT NOT NULL,
    PRIMARY KEY (tenant, day)
) STRICT;
