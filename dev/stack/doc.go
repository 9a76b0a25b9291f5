// Package stack runs the private services `mpegflow dev` needs on one
// machine — PostgreSQL, Redis and an S3-compatible store (versitygw's posix
// backend) — as child processes whose data lives in one directory, so a
// developer's jobs, queue and outputs survive a restart.
//
// It is the Go port of scripts/with-services.sh with persistence added: the
// database is initialised once, Redis keeps an append-only file, the bucket
// is a directory and the S3 credentials are generated once and kept (mode
// 0600). Each service is skipped when its connection is given (DATABASE_URL,
// REDIS_URL, S3 settings), each runs in its own process group so a terminal's
// Ctrl-C does not half-kill it, and each stops gracefully (then is killed)
// when the stack's context ends. PostgreSQL refuses to run as root, so root
// runs it as the postgres system user.
//
// The services are private to the user who runs the stack: PostgreSQL and
// Redis listen on 127.0.0.1 only and ask every client for a password
// generated on the first run (PostgreSQL: scram-sha-256 over TCP and the
// socket, no trust rule; Redis: requirepass). The passwords live in 0600
// files, reach the servers through files and stdin rather than command
// lines, and are never logged; Stack's URLs carry them. A data directory
// from before passwords is upgraded on its next start.
//
// Layout of the data directory (0700; 0710 with group postgres when root):
//
//	postgres/data   PGDATA (initdb once, superuser mpegflow; pg_hba.conf rewritten on every start)
//	postgres/run    PostgreSQL's unix socket directory (0700; none when the path would be too long)
//	postgres-password  the superuser's password (0600; delete it to set a new one)
//	redis/          Redis's working directory (append-only file, redis.conf 0600)
//	redis-password  Redis's password (0600)
//	s3/             the S3 bucket directories (bucket "mpegflow")
//	meta/s3/        object metadata (versitygw sidecar)
//	s3-credentials.json  the S3 root access key and secret (0600)
//	ports.json      the ports of the last run, tried first so URLs stay stable
//	run/            pid files, to stop services a killed run left behind
//	logs/           one log file per service
package stack
