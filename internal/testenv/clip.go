package testenv

import (
	"fmt"
	"os/exec"
	"testing"
)

// Clip writes an MP4 test clip to path: seconds of FFmpeg's moving
// testsrc2 pattern at size ("640x360"), 25 fps, H.264, with a 440 Hz AAC
// tone. A missing or failing ffmpeg fails the test.
func Clip(t testing.TB, path string, seconds int, size string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=25:duration=%d", size, seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:duration=%d", seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate test clip %s (%ds at %s): %v\n%s", path, seconds, size, err, out)
	}
}
