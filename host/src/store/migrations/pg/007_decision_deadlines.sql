-- PostgreSQL form of ../007_decision_deadlines.sql.
-- A case waiting for a person's decision may carry a deadline (the policy's
-- `decision_days`) in `due_at`. It shows as overdue in the cockpit, but the
-- scheduler never steps it: a person must act. Leave such cases out of the
-- scheduler's index, so that overdue decisions cost the tick nothing.
DROP INDEX cases_due;
CREATE INDEX cases_due ON cases (tenant, due_at)
    WHERE due_at IS NOT NULL AND needs_attention IS NULL AND state <> 'awaiting-decision';
