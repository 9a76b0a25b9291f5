package groupcommit

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/mpegflow/mpegflow/internal/testenv"
)

// TestMain fails the package when a test leaves a goroutine running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testenv.LeakOptions()...) }
