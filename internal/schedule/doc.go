// Package schedule turns a pool's pause windows (a five-field cron start and
// end in an IANA time zone) into edges: the instants at which the pool
// pauses or resumes. It is pure (times in, times out, no clock of its own):
// the dispatcher's Schedule Evaluator applies the latest edge, the API shows
// the next one, and both agree because they ask the same functions.
//
// Cron expressions are parsed by github.com/robfig/cron/v3, the library
// KEDA's cron scaler uses, so a pause window fires when a cron pre-scale
// window with the same fields would.
package schedule
