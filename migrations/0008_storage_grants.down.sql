DROP TABLE IF EXISTS storage_grants;
