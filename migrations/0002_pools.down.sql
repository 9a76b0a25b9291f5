DROP TABLE workers;
DROP TABLE worker_pools;
