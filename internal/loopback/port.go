// Package loopback picks free TCP ports on 127.0.0.1 for the services that
// `mpegflow dev` and the test harness start.
package loopback

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
)

// ephemeralPortRange is where Linux keeps the ports it gives outgoing
// connections and listeners on port 0.
const ephemeralPortRange = "/proc/sys/net/ipv4/ip_local_port_range"

// lowest is where FreePort starts looking: above the well-known and most
// registered services' ports.
const lowest = 10000

// FreePort picks, at random, a port nobody listens on and skip does not
// reject (nil: none), below the kernel's ephemeral range, as
// scripts/with-services.sh does. A port the kernel chose (port 0) comes
// from that range, which every outgoing connection on the machine draws
// from too, so on a busy machine a client's connection can take it between
// the picking and the service's binding. Below the range only another
// picker can; callers still retry when their binding fails.
func FreePort(skip func(port int) bool) (int, error) {
	high := highest()
	for range 200 {
		p := lowest + rand.IntN(high-lowest)
		if (skip == nil || !skip(p)) && Free(p) {
			return p, nil
		}
	}
	return 0, errors.New("no free TCP port on 127.0.0.1")
}

// highest is the end (exclusive) of FreePort's range: the first port of the
// kernel's ephemeral range, or 65000 when that range starts too low to
// leave room below it.
func highest() int {
	if low := ephemeralLow(); low > lowest+1000 {
		return low
	}
	return 65000
}

// Free reports whether port can be bound on 127.0.0.1 now.
func Free(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))) //nolint:noctx // a numeric loopback address: nothing to resolve, nothing that could block
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768,
// Linux's default, when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile(ephemeralPortRange)
	var low int
	if err == nil {
		_, err = fmt.Sscan(string(b), &low)
	}
	if err != nil {
		return 32768
	}
	return low
}
