package ffmpeg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// binaries returns the ffmpeg and ffprobe on PATH; the tests need both.
func binaries(t testing.TB) (ffmpegBin, ffprobeBin string) {
	t.Helper()
	ffmpegBin, err := exec.LookPath("ffmpeg")
	require.NoError(t, err, "ffmpeg must be installed")
	ffprobeBin, err = exec.LookPath("ffprobe")
	require.NoError(t, err, "ffprobe must be installed")
	return ffmpegBin, ffprobeBin
}

// clipDir holds the generated test clips, shared by all tests of the
// package (each clip is made once) so the suite spends its time encoding
// rather than starting FFmpeg.
var clipDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mpegflow-ffmpeg-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	clipDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		// No FFmpeg watcher or progress reader may outlive its encode.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left running:", err)
			code = 1
		}
	}
	os.Exit(code)
}

type clip struct {
	width, height int
	seconds       float64
	audio         bool
	// extra output options, e.g. -movflags +faststart
	extra []string
}

var (
	clipsMu sync.Mutex
	clips   = map[string]*clipFile{}
)

type clipFile struct {
	once sync.Once
	path string
	err  error
}

// makeClip returns a testsrc2 (+ sine) H.264/AAC MP4 made as the brief's
// command does. Clips are shared: tests must not modify them.
func makeClip(t testing.TB, c clip) string {
	t.Helper()
	key := fmt.Sprint(c.width, "x", c.height, "_", c.seconds, "_", c.audio, "_", strings.Join(c.extra, "_"))
	clipsMu.Lock()
	f, ok := clips[key]
	if !ok {
		f = &clipFile{path: filepath.Join(clipDir, fmt.Sprintf("clip%02d_%dx%d.mp4", len(clips), c.width, c.height))}
		clips[key] = f
	}
	clipsMu.Unlock()
	f.once.Do(func() {
		ffmpegBin, _ := binaries(t)
		d := strconv.FormatFloat(c.seconds, 'f', -1, 64)
		args := []string{"-nostdin", "-hide_banner", "-v", "error", "-y",
			"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=25:duration=%s", c.width, c.height, d)}
		if c.audio {
			args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:duration="+d)
		}
		args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
		if c.audio {
			args = append(args, "-c:a", "aac", "-shortest")
		}
		args = append(args, c.extra...)
		args = append(args, f.path)
		out, err := exec.Command(ffmpegBin, args...).CombinedOutput()
		if err != nil {
			f.err = fmt.Errorf("generate clip %s: %w: %s", key, err, out)
		}
	})
	require.NoError(t, f.err)
	return f.path
}

var probes sync.Map // clip path -> *probedClip

type probedClip struct {
	once sync.Once
	info MediaInfo
	err  error
}

// probeClip probes a shared clip once for the whole package; Probe itself
// is tested in probe_test.go.
func probeClip(t testing.TB, path string) MediaInfo {
	t.Helper()
	_, ffprobeBin := binaries(t)
	v, _ := probes.LoadOrStore(path, &probedClip{})
	p := v.(*probedClip)
	p.once.Do(func() { p.info, p.err = Probe(context.Background(), ffprobeBin, path) })
	require.NoError(t, p.err)
	return p.info
}

var (
	availableOnce sync.Once
	available     func(string) bool
	availableErr  error
)

// availableEncoders lists FFmpeg's encoders once for the whole package.
func availableEncoders(t testing.TB) func(string) bool {
	t.Helper()
	ffmpegBin, _ := binaries(t)
	availableOnce.Do(func() {
		available, availableErr = AvailableEncoders(context.Background(), ffmpegBin)
	})
	require.NoError(t, availableErr)
	return available
}

// encodeResult is everything a full encode produced.
type encodeResult struct {
	in       MediaInfo
	cmd      Command
	outputs  []Output
	progress []float64
}

// encode runs the whole pipeline the encoder runs: probe, choose CPU
// encoders, plan, run, collect, verify. It fails the test on any error and
// checks the progress reports on the way.
// captions are the job's converted caption files.
func encode(t *testing.T, spec encodespec.Spec, input string, captions ...Caption) encodeResult {
	t.Helper()
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(t)
	in := probeClip(t, input)
	cmd := plan(t, spec, in, input, WithCaptions(captions...))

	var res encodeResult
	require.NoError(t, Run(ctx, ffmpegBin, cmd, in.DurationSeconds, func(f float64) {
		res.progress = append(res.progress, f)
	}))
	requireProgress(t, res.progress)

	outputs, err := Collect(cmd)
	require.NoError(t, err)
	require.NoError(t, Verify(ctx, ffprobeBin, cmd, outputs, in))
	res.in, res.cmd, res.outputs = in, cmd, outputs
	return res
}

// plan chooses CPU encoders for the spec's codecs and plans into a fresh
// output directory.
func plan(t testing.TB, spec encodespec.Spec, in MediaInfo, input string, opts ...PlanOption) Command {
	t.Helper()
	outDir := filepath.Join(t.TempDir(), "out")
	cmd, err := Plan(spec, in, input, outDir, chooseCPU(t, spec), opts...)
	require.NoError(t, err)
	return cmd
}

// chooseCPU chooses CPU encoders for the spec's codecs.
func chooseCPU(t testing.TB, spec encodespec.Spec) []EncoderChoice {
	t.Helper()
	var codecs []string
	for _, r := range spec.Renditions {
		codecs = append(codecs, r.Codec)
	}
	encoders, err := ChooseEncoders(context.Background(), AcceleratorCPU, codecs, availableEncoders(t), nil)
	require.NoError(t, err)
	return encoders
}

// requireProgress checks fractions are monotonic, within [0, 1] and end at 1.
func requireProgress(t testing.TB, fractions []float64) {
	t.Helper()
	require.NotEmpty(t, fractions)
	for i, f := range fractions {
		require.GreaterOrEqual(t, f, 0.0)
		require.LessOrEqual(t, f, 1.0)
		if i > 0 {
			require.Greater(t, f, fractions[i-1], "progress went backwards: %v", fractions)
		}
	}
	require.Equal(t, 1.0, fractions[len(fractions)-1])
}

// renditionSizes maps rendition name to WxH for the video outputs planned.
func renditionSizes(cmd Command) map[string]string {
	sizes := map[string]string{}
	for _, o := range cmd.ExpectedOutputs {
		if o.Kind == KindVideo {
			sizes[o.Rendition] = fmt.Sprintf("%dx%d", o.Width, o.Height)
		}
	}
	return sizes
}

// builtin returns a built-in spec or fails.
func builtin(t testing.TB, name string) encodespec.Spec {
	t.Helper()
	s, ok := encodespec.Builtin(name)
	require.True(t, ok, name)
	return s
}

// fast makes a spec quicker to encode in tests without changing what is
// checked (sizes, packaging, keyframes).
func fast(s encodespec.Spec) encodespec.Spec {
	for i := range s.Renditions {
		if s.Renditions[i].Codec == encodespec.CodecH264 {
			s.Renditions[i].Preset = "ultrafast"
		}
	}
	return s
}

func readFile(t testing.TB, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	require.NoError(t, err)
	return string(b)
}
