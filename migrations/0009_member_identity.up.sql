-- Identity per organization (issue 14, item 4).
--
-- A member's display name, and the address as the organization typed it,
-- belong to the membership: users keeps only what identifies a person across
-- organizations (the id and the case-insensitive address), so adding someone
-- to one organization never changes what another one sees. Every existing
-- membership starts with the user's current name and address.
ALTER TABLE memberships
    ADD COLUMN name  text NOT NULL DEFAULT '',
    ADD COLUMN email text;
UPDATE memberships m SET name = u.name, email = u.email FROM users u WHERE u.id = m.user_id;
ALTER TABLE memberships ALTER COLUMN email SET NOT NULL;
ALTER TABLE users DROP COLUMN name;

-- Keys an admin issues for a member carry the most they may do (role) and who
-- issued them (created_by). A request acts with the lower of the key's role
-- and the member's current role. Keys members make for themselves keep
-- role NULL: they act with the member's role, whatever it becomes.
ALTER TABLE api_keys
    ADD COLUMN role       text CHECK (role IN ('viewer', 'editor', 'admin', 'owner', 'superadmin')),
    ADD COLUMN created_by uuid REFERENCES users (id) ON DELETE SET NULL;

-- An invitation is a single-use, expiring token an admin hands to a member,
-- who exchanges it (unauthenticated) for an API key of their own. As with
-- keys, only a SHA-256 of the token is stored and the prefix is the lookup.
-- Times come from the API server's clock, not now(), so tests control expiry.
CREATE TABLE member_invitations (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL,
    user_id     uuid NOT NULL,
    prefix      text NOT NULL UNIQUE,
    hash        bytea NOT NULL,
    role        text NOT NULL CHECK (role IN ('viewer', 'editor', 'admin', 'owner', 'superadmin')),
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    redeemed_at timestamptz,
    revoked_at  timestamptz,
    key_id      uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id) ON DELETE CASCADE,
    CHECK (expires_at > created_at),
    CHECK (redeemed_at IS NULL OR revoked_at IS NULL)
);
CREATE INDEX member_invitations_member_idx ON member_invitations (org_id, user_id, created_at);
