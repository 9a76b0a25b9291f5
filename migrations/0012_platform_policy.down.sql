REVOKE SELECT (id, plan) ON organizations FROM mpegflow_operator;
ALTER TABLE worker_pools
    DROP COLUMN policy_violation_at,
    DROP COLUMN policy_violation;
DROP TABLE platform_policy;
