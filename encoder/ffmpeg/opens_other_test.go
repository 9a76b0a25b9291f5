//go:build !linux

package ffmpeg

import "testing"

// watchOpens needs Linux's inotify. Elsewhere it sees no opens; the tests
// that use it still check that no content of the watched files reaches a
// result.
func watchOpens(t *testing.T, dir string) func() []string {
	t.Helper()
	return func() []string { return nil }
}
