package ffmpeg

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// TestRunCancel stops a long encode (a 60 s clip read in real time, so it
// would take a minute) once progress shows it is running.
func TestRunCancel(t *testing.T) {
	t.Parallel()
	ffmpegBin, ffprobeBin := binaries(t)
	input := makeClip(t, clip{width: 160, height: 90, seconds: 60, audio: true})
	in, err := Probe(context.Background(), ffprobeBin, input)
	require.NoError(t, err)
	cmd := plan(t, smallSpec(encodespec.PackagingHLS), in, input)
	i := slices.Index(cmd.Args, "-i")
	cmd.Args = slices.Insert(cmd.Args, i, "-re") // read at native speed

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, ffmpegBin, cmd, in.DurationSeconds, func(f float64) {
			if f > 0 {
				select {
				case <-started:
				default:
					close(started)
				}
			}
		})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("Run returned before it was cancelled: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
		var ie *InputError
		require.NotErrorAs(t, err, &ie)
	case <-time.After(30 * time.Second): // FFmpeg would need ~60 s more
		t.Fatal("Run did not stop after cancel")
	}
}

// TestRunKillsFFmpegIgnoringSIGINT uses a stand-in that ignores SIGINT;
// Run must kill it after the grace period.
func TestRunKillsFFmpegIgnoringSIGINT(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stubborn := filepath.Join(dir, "stubborn-ffmpeg")
	script := "#!/bin/sh\ntrap '' INT\necho progress=continue\nexec sleep 120\n"
	require.NoError(t, os.WriteFile(stubborn, []byte(script), 0o755))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, stubborn, Command{OutDir: filepath.Join(dir, "out")}, 10, func(float64) { once.Do(func() { close(started) }) })
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not kill a process that ignores SIGINT")
	}
}

func TestRunInputError(t *testing.T) {
	t.Parallel()
	ffmpegBin, _ := binaries(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "corrupt.mkv")
	require.NoError(t, os.WriteFile(input, []byte("definitely not a matroska file"), 0o644))
	// Plan as if a probe had passed, to see what Run makes of FFmpeg's error.
	in := source(320, 180)
	in.Container = "matroska"
	cmd, err := Plan(smallSpec(encodespec.PackagingMP4), in, input, filepath.Join(dir, "out"), cpuEncoders)
	require.NoError(t, err)

	err = Run(context.Background(), ffmpegBin, cmd, 30, nil)
	var ie *InputError
	require.ErrorAs(t, err, &ie)
	require.Contains(t, ie.Msg, "invalid data")
}

func TestRunFailureCarriesStderr(t *testing.T) {
	t.Parallel()
	ffmpegBin, _ := binaries(t)
	cmd := Command{Args: []string{"-nostdin", "-hide_banner", "-no-such-option"}, OutDir: filepath.Join(t.TempDir(), "out")}
	err := Run(context.Background(), ffmpegBin, cmd, 1, nil)
	require.ErrorContains(t, err, "no-such-option")
	require.NotErrorIs(t, err, ErrInput)
}

func TestTailBufferKeepsLastLines(t *testing.T) {
	t.Parallel()
	tb := newTailBuffer(3)
	_, _ = tb.Write([]byte("one\ntwo\r\n[swscaler @ 0x1] deprecated pixel format used, make sure you did set range correctly\nthree\nfo"))
	_, _ = tb.Write([]byte("ur\nfive"))
	require.Equal(t, []string{"three", "four", "five"}, tb.Lines())
}
