-- PostgreSQL form of ../013_sweep_speed.sql.
-- Every step of a sweep rewrites its case's due time, and each index on it
-- costs the sweep time (measured: this one, a sixth of it). The cockpit's
-- deadline counts read `cases_tenant_state` (tenant, state, due_at) state
-- by state instead.
DROP INDEX cases_deadline;

-- Every request sent inserts a link token, and this index's keys (token ids)
-- are random, so each insert touched another page: 8% of a sweep,
-- measured. A message's tokens are looked up among its contact's.
DROP INDEX response_tokens_by_message;

-- A step's change of state is counted by klar at commit (`cases::write`,
-- which also refuses to overwrite a case another writer moved meanwhile),
-- not by a trigger on every update: the trigger cost a fifth of a sweep.
-- Inserts and deletes keep their triggers. The trigger's function goes too.
DROP TRIGGER case_counts_update ON cases;
DROP FUNCTION case_counts_update();
