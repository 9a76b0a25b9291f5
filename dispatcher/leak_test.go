package dispatcher

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/mpegflow/mpegflow/internal/testenv"
)

// TestMain fails the package when a test leaves a goroutine running. A
// test binary started as a benchmark's clients (benchClientsEnv) runs
// them instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv(benchClientsEnv) != "" {
		os.Exit(benchClientsMain())
	}
	goleak.VerifyTestMain(m, testenv.LeakOptions()...)
}
