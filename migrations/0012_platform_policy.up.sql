-- The platform policy (docs/design/0018-platform-policy.md): what each plan
-- may do with dedicated pools, plus SuperAdmin overrides per organization,
-- as one jsonb document (apiv1.PlatformPolicy). One row at most: `serve`
-- seeds it from its configuration (the chart's platformPolicy) when it is
-- absent; afterwards PUT /v1/platform/policy replaces it.
CREATE TABLE platform_policy (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    document   jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid REFERENCES users (id) ON DELETE SET NULL
);

-- Why a dedicated pool is outside the policy, recorded by the apiserver
-- whenever the policy, an organization's plan or a pool changes; NULL while
-- it complies. The operator, which never writes Postgres, checks the same
-- rules itself and renders no ScaledJob for such a pool.
ALTER TABLE worker_pools
    ADD COLUMN policy_violation text,
    ADD COLUMN policy_violation_at timestamptz;

-- The operator's read-only role checks pools against the policy itself.
GRANT SELECT ON platform_policy TO mpegflow_operator;
GRANT SELECT (id, plan) ON organizations TO mpegflow_operator;
