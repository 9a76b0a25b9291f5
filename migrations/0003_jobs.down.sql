DROP TABLE job_events;
DROP TABLE jobs;
DROP TABLE assets;
DROP TABLE workflows;
