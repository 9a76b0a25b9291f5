package testenv

import (
	"fmt"

	"github.com/mpegflow/mpegflow/internal/loopback"
)

// FreeLoopbackPort picks a loopback port nobody listens on, below the
// kernel's ephemeral range (loopback.FreePort): a port the kernel chose
// could be taken by any outgoing connection before the caller binds it (on
// a busy CI machine one took KEDA's, and KEDA exited). Another picker can
// still take it; the caller retries.
func FreeLoopbackPort() (int, error) {
	p, err := loopback.FreePort(nil)
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	return p, nil
}
