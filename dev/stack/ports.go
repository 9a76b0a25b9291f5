package stack

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/mpegflow/mpegflow/internal/loopback"
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
// kernel's ephemeral range (loopback.FreePort: outgoing connections take
// their local ports from that range, so one cannot grab ours between now
// and the bind). Something else can still take the port before the service
// binds it; callers retry on "address already in use".
func (pp *portPicker) pick(prefer int) (int, error) {
	if pp.taken == nil {
		pp.taken = map[int]bool{}
	}
	if prefer > 0 && !pp.taken[prefer] && loopback.Free(prefer) {
		pp.taken[prefer] = true
		return prefer, nil
	}
	p, err := loopback.FreePort(func(p int) bool { return pp.taken[p] })
	if err != nil {
		return 0, fmt.Errorf("pick a port: %w", err)
	}
	pp.taken[p] = true
	return p, nil
}
