-- The Webhook Executor claims a due delivery by pushing next_attempt_at one
-- lease ahead and stamping a claim token; only the holder of that token may
-- record the attempt's result (a late result after a redelivery is dropped).
ALTER TABLE webhook_deliveries
    ADD COLUMN claim_token     uuid,
    ADD COLUMN last_attempt_at timestamptz;

-- When the circuit opened (the webhook was disabled after N straight failures).
ALTER TABLE webhooks ADD COLUMN disabled_at timestamptz;

-- Delivery log of one webhook, newest first (keyset paging on created_at, id).
DROP INDEX webhook_deliveries_webhook_idx;
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, created_at DESC, id DESC);

-- Finished deliveries, oldest first, for pruning the log after its retention.
CREATE INDEX webhook_deliveries_finished_idx ON webhook_deliveries (created_at) WHERE status <> 'pending';

-- Webhooks matched on every job event: by organization.
CREATE INDEX webhooks_org_enabled_idx ON webhooks (org_id) WHERE enabled;
