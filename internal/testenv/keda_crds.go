package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// KEDACRDDir is config/crd/bases of the KEDA module go.mod requires: the
// CRDs that match the Go types the operator renders, read at test time and
// never copied into the repository. MPEGFLOW_KEDA_CRD_DIR overrides it.
func KEDACRDDir(ctx context.Context) (string, error) {
	if d := os.Getenv("MPEGFLOW_KEDA_CRD_DIR"); d != "" {
		return d, nil
	}
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/kedacore/keda/v2").Output()
	if err != nil {
		return "", fmt.Errorf("locate the KEDA module (go list -m): %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "bases")
	if _, err := os.Stat(filepath.Join(dir, "keda.sh_scaledjobs.yaml")); err != nil {
		return "", fmt.Errorf("KEDA CRDs: %w", err)
	}
	return dir, nil
}
