package ffmpeg

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestToolEnv(t *testing.T) {
	t.Parallel()
	got := toolEnv([]string{
		"PATH=/usr/bin", "HOME=/home/encoder", "MPEGFLOW_WORKER_TOKEN=secret", "AWS_SECRET_ACCESS_KEY=x",
		"CUDA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=video", "LD_LIBRARY_PATH=/usr/local/nvidia/lib64",
		"PATHX=no", "MPEGFLOW_COORDINATOR=coordinator:9090", "TMPDIR=/tmp/work",
	})
	assert.Equal(t, []string{
		"PATH=/usr/bin", "HOME=/home/encoder", "CUDA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=video",
		"LD_LIBRARY_PATH=/usr/local/nvidia/lib64", "TMPDIR=/tmp/work",
	}, got)
	assert.NotNil(t, toolEnv(nil), "an empty environment, never the parent's (exec reads nil Env as inherit)")
}

// TestCommandHidesThePodsEnvironment: a program started through command
// does not see the worker token or any other of the pod's variables.
func TestCommandHidesThePodsEnvironment(t *testing.T) {
	t.Setenv("MPEGFLOW_WORKER_TOKEN", "worker-token-secret")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "storage-secret")
	env, err := exec.LookPath("env")
	require.NoError(t, err)
	out, err := command(t.Context(), env).Output()
	require.NoError(t, err)
	assert.NotContains(t, string(out), "secret")
	assert.Contains(t, string(out), "PATH=")
}

// TestEveryToolStartsThroughCommand: no file of the encoder (this package
// and the pod's around it) starts a program but through command, so none
// inherits the pod's environment.
func TestEveryToolStartsThroughCommand(t *testing.T) {
	t.Parallel()
	var files []string
	require.NoError(t, filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") && path != "exec.go" {
			files = append(files, path)
		}
		return err
	}))
	require.Contains(t, files, filepath.Join("..", "worker.go"), "the walk reads the encoder's own files")
	fset := token.NewFileSet()
	for _, name := range files {
		if name == filepath.Join("..", "ffmpeg", "exec.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "exec" && strings.HasPrefix(sel.Sel.Name, "Command") {
					t.Errorf("%s: exec.%s: start FFmpeg and ffprobe through command, which drops the pod's environment", fset.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
}
