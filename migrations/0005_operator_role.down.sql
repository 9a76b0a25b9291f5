DROP TRIGGER IF EXISTS worker_pools_notify ON worker_pools;
DROP FUNCTION IF EXISTS mpegflow_notify_worker_pools();

REVOKE SELECT ON worker_pools FROM mpegflow_operator;
REVOKE USAGE ON SCHEMA public FROM mpegflow_operator;
DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM mpegflow_operator', current_database());
END
$$;

-- The role itself stays: roles are cluster-wide, other databases of the
-- cluster may still grant it privileges, and dropping it while another
-- database migrates up would race that migration's GRANTs. Drop it by hand
-- once no database uses it: DROP ROLE mpegflow_operator;
