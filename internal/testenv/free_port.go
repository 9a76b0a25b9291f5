package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// ephemeralPortRange is where Linux keeps the ports it gives outgoing
// connections and listeners on port 0.
const ephemeralPortRange = "/proc/sys/net/ipv4/ip_local_port_range"

// lowestFreePort is where FreeLoopbackPort starts looking: above the
// well-known and most registered services' ports.
const lowestFreePort = 10000

// FreeLoopbackPort picks, at random, a loopback port nobody listens on,
// below the kernel's ephemeral range (as scripts/with-services.sh does). A
// port the kernel chose (port 0) comes from that range, which every
// outgoing connection on the machine draws from too: on a busy CI machine a
// client's connection took a port between its picking and KEDA's binding,
// and KEDA exited. Below the range only another picker can take it, and the
// caller still retries when its binding fails.
func FreeLoopbackPort() (int, error) {
	high := ephemeralLow()
	if high <= lowestFreePort+1000 { // a range that starts low leaves no room below it
		high = 65000
	}
	for range 100 {
		p := lowestFreePort + rand.IntN(high-lowestFreePort)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))) //nolint:noctx // a numeric loopback address: nothing to resolve, nothing that could block
		if err != nil {
			continue // taken
		}
		_ = ln.Close()
		return p, nil
	}
	return 0, fmt.Errorf("find a free loopback port: 100 random ports from %d to %d were taken", lowestFreePort, high-1)
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768,
// Linux's default, when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile(ephemeralPortRange)
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return 32768
	}
	return low
}
