-- The operator's read-only role (design.md, Operator: "reads worker_pools with a
-- read-only database role; never writes Postgres").
--
-- mpegflow_operator is a NOLOGIN group role holding exactly the privileges the
-- operator needs: CONNECT on this database, USAGE on the schema and SELECT on
-- worker_pools. No password ever appears in a migration. A deployment gives the
-- operator a login that inherits the group, e.g.
--
--   CREATE ROLE mpegflow_operator_login LOGIN PASSWORD '...' IN ROLE mpegflow_operator;
--
-- (or ALTER ROLE mpegflow_operator LOGIN PASSWORD '...'), and sets
-- MPEGFLOW_OPERATOR_DATABASE_URL to that user. Roles are cluster-wide, so the
-- role is created only when missing: several databases of one cluster (tests,
-- staging next to production) share it, each with its own grants.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mpegflow_operator') THEN
        CREATE ROLE mpegflow_operator NOLOGIN;
    END IF;
EXCEPTION
    -- Another database's migration created it between the check and CREATE.
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO mpegflow_operator', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO mpegflow_operator;
GRANT SELECT ON worker_pools TO mpegflow_operator;

-- Change signal for the operator: it LISTENs on mpegflow_worker_pools and
-- reconciles at once instead of waiting for its 30 s period. Statement-level,
-- so a bulk change sends one notification; the payload is empty because the
-- operator always re-reads every pool (level-based reconcile).
CREATE FUNCTION mpegflow_notify_worker_pools() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mpegflow_worker_pools', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER worker_pools_notify
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON worker_pools
FOR EACH STATEMENT EXECUTE FUNCTION mpegflow_notify_worker_pools();
