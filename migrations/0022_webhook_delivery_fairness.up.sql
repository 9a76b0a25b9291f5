-- A round of the Webhook Executor claims deliveries webhook by webhook, in
-- turns (the first due of each webhook, then the second of each, ...), so
-- that one organization's backlog cannot hold every other organization's
-- deliveries behind it. Each turn reads a webhook's due deliveries in event
-- order, which this index serves; the index on next_attempt_at alone only
-- served the oldest-due-first claim it replaces.
CREATE INDEX webhook_deliveries_webhook_due_idx ON webhook_deliveries (webhook_id, next_attempt_at, created_at, id)
	WHERE status = 'pending';
DROP INDEX webhook_deliveries_due_idx;
