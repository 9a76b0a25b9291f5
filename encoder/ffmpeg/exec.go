package ffmpeg

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// command is exec.CommandContext for FFmpeg and ffprobe, with only the
// environment they need (toolEnv): never the pod's own, which holds the
// worker token. FFmpeg parses hostile media; should a file ever take it
// over, it must find no credential to take further.
func command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, bin, args...)
	c.Env = toolEnv(os.Environ())
	return c
}

// toolEnvNames are the variables FFmpeg and ffprobe keep: where to find
// programs, libraries and scratch space, and what the GPU runtime sets
// (CUDA_*, NVIDIA_*: which devices NVENC may use).
var toolEnvNames = []string{"PATH", "HOME", "TMPDIR", "LD_LIBRARY_PATH", "TZ", "LANG", "LC_ALL"}

// toolEnv keeps, of env (KEY=value entries), those toolEnvNames names and
// the GPU runtime's.
func toolEnv(env []string) []string {
	out := []string{}
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(toolEnvNames, name) || strings.HasPrefix(name, "CUDA_") || strings.HasPrefix(name, "NVIDIA_") {
			out = append(out, kv)
		}
	}
	return out
}
