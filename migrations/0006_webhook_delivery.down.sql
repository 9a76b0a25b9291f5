DROP INDEX webhooks_org_enabled_idx;
DROP INDEX webhook_deliveries_finished_idx;
DROP INDEX webhook_deliveries_webhook_idx;
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, created_at DESC);
ALTER TABLE webhooks DROP COLUMN disabled_at;
ALTER TABLE webhook_deliveries DROP COLUMN claim_token, DROP COLUMN last_attempt_at;
