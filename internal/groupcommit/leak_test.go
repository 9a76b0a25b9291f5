package groupcommit

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running. (Not
// testenv.LeakOptions: testenv imports the store, which batches with this
// package; the fasthttp goroutines those options allow never run here.)
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
