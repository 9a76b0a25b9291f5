// Package cli is everything a user types into `mpegflow` as an API client:
// the cobra commands (jobs, assets, pools, workflows, webhooks, members and
// API keys, login and contexts, usage, workers, backfill and batches,
// version), their connection flags and their output (tables, -o json|yaml,
// progress bars), usage errors and exit codes.
//
// It talks to MpegFlow only through the REST client. The commands that run a
// server role or open the database (serve, migrate, admin, encode, dev,
// operator, pools plan) are wired in cmd/mpegflow and handed to NewRoot as
// Extensions; internal/archtest holds this package to that.
package cli
