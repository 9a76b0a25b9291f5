package store

// StepUp applies the next n migrations, so tests can stop the schema at each
// version on the way up and compare it with the same version on the way down.
func (mg *Migrator) StepUp(n int) error { return mg.m.Steps(n) }

// HotPathStatements are the group-commit statements that run on the hot
// path's pool (WithHotPath), by kind.
var HotPathStatements = map[string]string{
	"claim": claimJobsSQL, "complete": completeJobsSQL, "heartbeat": heartbeatJobsSQL, "submit": createJobsSQL,
	"claim one": claimJobSQL, "complete one": completeJobSQL, "heartbeat one": heartbeatSQL,
}
