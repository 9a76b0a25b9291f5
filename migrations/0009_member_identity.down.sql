DROP TABLE member_invitations;

-- Without api_keys.role a key acts with its member's full role, so a key
-- issued with a lower role than its member now has would gain privileges:
-- revoke those first.
UPDATE api_keys k SET revoked_at = COALESCE(k.revoked_at, now())
FROM memberships m
WHERE m.org_id = k.org_id AND m.user_id = k.user_id AND k.role IS NOT NULL
  AND array_position(ARRAY['viewer', 'editor', 'admin', 'owner', 'superadmin'], k.role)
    < array_position(ARRAY['viewer', 'editor', 'admin', 'owner', 'superadmin'], m.role);
ALTER TABLE api_keys DROP COLUMN created_by, DROP COLUMN role;

-- Back to one global name per user: the name given by the organization that
-- added the user most recently with a non-empty name, which is what the
-- global column held before 0009 (each add with a name overwrote it).
ALTER TABLE users ADD COLUMN name text NOT NULL DEFAULT '';
UPDATE users u SET name = m.name
FROM (
    SELECT DISTINCT ON (user_id) user_id, name
    FROM memberships
    WHERE name <> ''
    ORDER BY user_id, created_at DESC, org_id
) m
WHERE m.user_id = u.id;
ALTER TABLE memberships DROP COLUMN email, DROP COLUMN name;
