// Package server wires the serve process from its configuration: the
// Postgres and Redis connections, object storage, the event bus and hub,
// metrics, the coordinator and the batch expander, and runs the roles asked
// for (REST API, coordinator, background services, metrics). `mpegflow
// serve` and `mpegflow dev` both run it, so dev runs exactly what serve runs.
package server
