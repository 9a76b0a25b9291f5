package dev

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
)

// DataDir is --data, else $MPEGFLOW_DEV_DATA, else
// $XDG_DATA_HOME/mpegflow/dev, else ~/.local/share/mpegflow/dev.
func DataDir(flag string) (string, error) {
	dir := cmp.Or(flag, os.Getenv("MPEGFLOW_DEV_DATA"))
	if dir == "" {
		if x := os.Getenv("XDG_DATA_HOME"); x != "" {
			dir = filepath.Join(x, "mpegflow", "dev")
		} else {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("find the data directory: %w (pass --data)", err)
			}
			dir = filepath.Join(home, ".local", "share", "mpegflow", "dev")
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("data directory %s: %w", dir, err)
	}
	return abs, nil
}
