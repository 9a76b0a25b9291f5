package testenv

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFreeLoopbackPortBelowEphemeralRange: the port is outside the range
// outgoing connections draw from, and free: the caller can bind it.
func TestFreeLoopbackPortBelowEphemeralRange(t *testing.T) {
	t.Parallel()
	high := ephemeralLow()
	if high <= lowestFreePort+1000 { // no room below the range: FreeLoopbackPort looks up to 65000
		high = 65000
	}
	for range 20 {
		p, err := FreeLoopbackPort()
		require.NoError(t, err)
		assert.GreaterOrEqual(t, p, lowestFreePort)
		assert.Less(t, p, high, "a port of the ephemeral range")
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		require.NoError(t, err, "the port it picked is taken")
		require.NoError(t, ln.Close())
	}
}
