package store

// StepUp applies the next n migrations, so tests can stop the schema at each
// version on the way up and compare it with the same version on the way down.
func (mg *Migrator) StepUp(n int) error { return mg.m.Steps(n) }
