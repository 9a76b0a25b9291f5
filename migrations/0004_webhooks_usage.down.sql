DROP TABLE usage_records;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
