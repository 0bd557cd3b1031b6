-- PostgreSQL form of ../005_messages.sql (klar's store, version 5): one
-- message per contact across purposes, stale actions withdrawn before
-- delivery, and erasure that ends every purpose.

-- An action withdrawn before delivery because its case moved on (consented,
-- refused, withdrawn, erased, on hold, or a newer request superseded it).
-- A withdrawn action also counts as acknowledged, so no deliverer takes it.
ALTER TABLE outbox ADD COLUMN cancelled_at BIGINT;
ALTER TABLE outbox ADD COLUMN cancel_reason TEXT;
-- When the CRM could first have seen the action (polled or a webhook
-- attempt): withdrawing it after that queues a `cancel` action for the CRM.
ALTER TABLE outbox ADD COLUMN offered_at BIGINT;
-- A message an event raised less than a day after the contact's last one
-- waits in the outbox until then: no deliverer takes it earlier.
ALTER TABLE outbox ADD COLUMN deliver_after BIGINT;
CREATE INDEX outbox_pending_by_contact ON outbox (tenant, contact) WHERE acked_at IS NULL;

-- When the contact was last sent a message (any purpose, any channel): the
-- next one waits at least a day.
ALTER TABLE contacts ADD COLUMN last_message_at BIGINT;
-- Erased contacts, found without a scan: their cases must all be purged.
CREATE INDEX contacts_erased ON contacts (tenant) WHERE erased_at IS NOT NULL;

-- The links of one message: a message that asks about several purposes has
-- one link, and a token per purpose (case) behind it. `message` is the id of
-- the token whose secret was sent; NULL on links from before version 5 (each
-- its own message).
ALTER TABLE response_tokens ADD COLUMN message TEXT;
CREATE INDEX response_tokens_by_message ON response_tokens (message) WHERE message IS NOT NULL;
