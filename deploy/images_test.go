//go:build images

package deploy

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The images test runs the two built images the way their deployments do:
// the mpegflow image as distroless's nonroot user, the encode pod's image as
// uid 10001 on a read-only root with a scratch tmpfs, as the operator's Job
// template mounts it. It needs the images, so it runs only under the images
// build tag, from `make test-images`, which builds them first and runs this
// through `scripts/images.sh exec`: that names the engine (docker or podman,
// with podman's configuration) and the images in the environment.

// imageEnv is what scripts/images.sh exec exports.
type imageEnv struct {
	engine, server, encoder string
}

func setupImages(t *testing.T) imageEnv {
	t.Helper()
	e := imageEnv{
		engine:  os.Getenv("MPEGFLOW_IMAGE_ENGINE"),
		server:  os.Getenv("MPEGFLOW_IMAGE"),
		encoder: os.Getenv("MPEGFLOW_ENCODER_IMAGE"),
	}
	require.True(t, e.engine != "" && e.server != "" && e.encoder != "",
		"MPEGFLOW_IMAGE_ENGINE, MPEGFLOW_IMAGE and MPEGFLOW_ENCODER_IMAGE are unset: run make test-images")
	return e
}

// run runs the engine with args and returns stdout, stderr and the exit code
// (-1 when the engine could not be started at all, which fails the test).
func (e imageEnv) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(t.Context(), e.engine, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		require.NoError(t, err, "start %s", e.engine)
	}
	return out.String(), errb.String(), code
}

// scratchOptions are the --tmpfs options of a /scratch the encoder's uid
// can write, as the pod's emptyDir is. A tmpfs over the image's /scratch is
// root's (runc keeps only the directory's mode), so it must be handed to the
// user: podman's U does that; Docker passes uid and gid to the mount.
func (e imageEnv) scratchOptions() string {
	if e.engine == "podman" {
		return "rw,U"
	}
	return "rw,uid=10001,gid=10001"
}

// user is the image's configured user, as the engine reports it.
func (e imageEnv) user(t *testing.T, image string) string {
	t.Helper()
	out, stderr, code := e.run(t, "image", "inspect", "--format", "{{.Config.User}}", image)
	require.Zero(t, code, "inspect %s: %s", image, stderr)
	return strings.TrimSpace(out)
}

// file reads one file out of image without running anything in it (the
// mpegflow image has no shell): create a container, copy the file out as a
// tar stream, remove the container.
func (e imageEnv) file(t *testing.T, image, path string) string {
	t.Helper()
	out, stderr, code := e.run(t, "create", image)
	require.Zero(t, code, "create a container of %s: %s", image, stderr)
	id := strings.TrimSpace(out)
	// Not e.run: the test's context is done by the time cleanups run.
	t.Cleanup(func() { _ = exec.Command(e.engine, "rm", id).Run() })
	tarred, stderr, code := e.run(t, "cp", id+":"+path, "-")
	require.Zero(t, code, "copy %s out of %s: %s", path, image, stderr)
	return tarred // a one-file tar: the content is in it verbatim
}

func TestImageServer(t *testing.T) {
	t.Parallel()
	e := setupImages(t)

	assert.Equal(t, "65532:65532", e.user(t, e.server))
	passwd := e.file(t, e.server, "/etc/passwd")
	assert.Contains(t, passwd, "nonroot:x:65532:65532:")
	assert.Contains(t, e.file(t, e.server, "/etc/ssl/certs/ca-certificates.crt"), "-----BEGIN CERTIFICATE-----")

	// Static, stripped, built by the Go of the golang image: it runs on a
	// base with no libc, no network and a read-only root.
	stdout, stderr, code := e.run(t, "run", "--rm", "--network", "none", "--read-only", e.server, "version")
	require.Zero(t, code, "mpegflow version: %s", stderr)
	assert.Regexp(t, `^mpegflow \S+ \(go1\.26(\.\d+)?, linux/`+regexp.QuoteMeta(runtime.GOARCH)+`\)\n$`, stdout)
}

func TestImageEncoder(t *testing.T) {
	t.Parallel()
	e := setupImages(t)
	pod := []string{"run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/scratch:" + e.scratchOptions()}

	assert.Equal(t, "10001:10001", e.user(t, e.encoder))

	t.Run("ffmpeg", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, code := e.run(t, append(pod, "--entrypoint", "ffmpeg", e.encoder, "-hide_banner", "-version")...)
		require.Zero(t, code, "ffmpeg -version: %s", stderr)
		assert.Regexp(t, `^ffmpeg version \S+`, stdout)
		// Debian's build, with NVENC for GPU nodes.
		stdout, stderr, code = e.run(t, append(pod, "--entrypoint", "ffmpeg", e.encoder, "-hide_banner", "-encoders")...)
		require.Zero(t, code, "ffmpeg -encoders: %s", stderr)
		for _, enc := range []string{"h264_nvenc", "hevc_nvenc", "libx264", "libx265", "libsvtav1"} {
			assert.Contains(t, stdout, " "+enc+" ")
		}
	})

	t.Run("user and filesystem", func(t *testing.T) {
		t.Parallel()
		// As the pod runs: uid 10001, scratch writable, root not.
		script := `id -u; id -g; echo "$MPEGFLOW_SCRATCH_DIR"; pwd; touch /scratch/probe && echo scratch-writable; touch /probe 2>/dev/null && echo root-writable; true`
		stdout, stderr, code := e.run(t, append(pod, "--entrypoint", "sh", e.encoder, "-c", script)...)
		require.Zero(t, code, "sh: %s", stderr)
		assert.Equal(t, "10001\n10001\n/scratch\n/scratch\nscratch-writable\n", stdout)
	})

	t.Run("encode without configuration", func(t *testing.T) {
		t.Parallel()
		// The entrypoint is mpegflow encode; with none of the pod's
		// environment it must stop at once and say what is missing.
		stdout, stderr, code := e.run(t, append(pod, e.encoder)...)
		assert.NotZero(t, code)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, "MPEGFLOW_COORDINATOR is required")
		assert.Contains(t, stderr, "MPEGFLOW_WORKER_TOKEN is required")
	})
}
