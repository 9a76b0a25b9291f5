package stack

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// ports are the loopback ports the services listened on in the last run.
// They are tried first, so a restarted stack keeps its URLs (an S3 client
// configured by hand, a presigned URL still in a terminal).
type ports struct {
	Postgres int `json:"postgres,omitempty"`
	Redis    int `json:"redis,omitempty"`
	S3       int `json:"s3,omitempty"`
}

func loadPorts(path string) ports {
	var p ports
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &p) // a damaged file only costs stable ports
	}
	return p
}

func savePorts(path string, p ports) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encode ports: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// portPicker hands out free loopback ports, never the same one twice.
type portPicker struct{ taken map[int]bool }

// pick returns prefer when it is free, else a random free port below the
// kernel's ephemeral range (outgoing connections take their local ports
// from that range, so one cannot grab ours between now and the bind).
// Something else can still take the port before the service binds it;
// callers retry on "address already in use".
func (pp *portPicker) pick(prefer int) (int, error) {
	if pp.taken == nil {
		pp.taken = map[int]bool{}
	}
	if prefer > 0 && !pp.taken[prefer] && portFree(prefer) {
		pp.taken[prefer] = true
		return prefer, nil
	}
	high := ephemeralLow()
	if high <= 11000 {
		high = 65000
	}
	for range 200 {
		p := 10000 + rand.IntN(high-10000)
		if !pp.taken[p] && portFree(p) {
			pp.taken[p] = true
			return p, nil
		}
	}
	return 0, errors.New("no free TCP port on 127.0.0.1")
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))) //nolint:noctx // a numeric loopback address: nothing to resolve, nothing that could block
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}
