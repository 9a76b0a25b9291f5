-- Fair share across organizations (docs/design/0020-fair-share.md): a
-- platform administrator may override the weight an organization's queued
-- jobs get within each pool and lane; NULL means its plan's default
-- (apiv1.PlanShareWeights).
ALTER TABLE organizations
    ADD COLUMN share_weight integer CHECK (share_weight BETWEEN 1 AND 100);
