// Package dispatcher is MpegFlow's coordinator: the gRPC service encode pods
// call to claim their one job (Claim, Heartbeat, PresignOutputs, Complete,
// Fail), and the background services that keep Postgres (the truth) and
// Redis (the dispatch hint) in step — Stale Job Recovery, Stale Worker
// Sweeper, Offline Worker Reaper, Delayed Job Promoter, Queue Reconciler and
// Webhook Executor.
//
// Claims are exactly-once: an id popped from Redis becomes a claim only if
// the conditional UPDATE … WHERE status = 'queued' wins, so duplicated ids
// are harmless and lost ids are re-pushed by the reconciler.
package dispatcher
