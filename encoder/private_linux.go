//go:build linux

package encoder

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// KeepEnvironmentPrivate makes the encode pod's process non-dumpable: its
// /proc files (environ, mem) become root's and ptrace is refused, so a
// program it starts under the same user (FFmpeg, parsing hostile media)
// cannot read the worker token from it. FFmpeg's own environment is
// already stripped (ffmpeg.command); this closes the way through the parent.
func KeepEnvironmentPrivate() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("make the encoder non-dumpable: %w", err)
	}
	return nil
}
