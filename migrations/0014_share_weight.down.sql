ALTER TABLE organizations DROP COLUMN share_weight;
