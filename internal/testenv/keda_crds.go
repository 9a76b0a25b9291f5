package testenv

import (
	"context"
	"errors"
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
	mod, err := KEDAModuleDir(ctx)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(mod, "config", "crd", "bases")
	if _, err := os.Stat(filepath.Join(dir, "keda.sh_scaledjobs.yaml")); err != nil {
		return "", fmt.Errorf("KEDA CRDs: %w", err)
	}
	return dir, nil
}

// KEDAModuleDir is the directory of the KEDA module go.mod pins, in the
// module cache (read-only): its config/ holds KEDA's own manifests.
func KEDAModuleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/kedacore/keda/v2").Output()
	if err != nil {
		return "", fmt.Errorf("locate the KEDA module (go list -m): %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", errors.New("locate the KEDA module: not downloaded (go mod download github.com/kedacore/keda/v2)")
	}
	return dir, nil
}
