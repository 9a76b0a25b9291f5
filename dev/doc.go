// Package dev is `mpegflow dev`: the whole pipeline on one machine. Run
// starts the private services (dev/stack), applies the migrations, runs the
// same server process as `mpegflow serve` (internal/server) and the local
// executor (dev/localexec) that starts encode processes as KEDA would start
// pods, bootstraps the "Local" organization on the first run and makes it
// the CLI's current context. DataDir and PrintEnv serve `mpegflow dev env`.
//
// Its tests (dev_test.go, dev_e2e_test.go) build and run the real binary.
package dev
