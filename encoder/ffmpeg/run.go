package ffmpeg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// anyURL matches a URL in FFmpeg's output, to the end of the line's word.
var anyURL = regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://\S*`)

// decodeErrorExit is FFmpeg's exit status when the share of packets that
// failed to decode exceeded -max_error_rate (2/3 by default).
const decodeErrorExit = 69

const (
	// stopGrace is how long FFmpeg gets after SIGINT to finish writing
	// before it is killed.
	stopGrace = 5 * time.Second
	// stderrLines is how much of FFmpeg's stderr is kept for errors.
	stderrLines = 40
)

// Run runs cmd with ffmpegBin in cmd.OutDir (creating it and cmd.Dirs),
// calling report with the fraction of durationSeconds encoded (see
// ParseProgress; calls come from one goroutine and stop before Run
// returns). When ctx ends, FFmpeg gets SIGINT and, if it has not exited
// 5 s later, SIGKILL; Run then returns an error that wraps ctx.Err().
// When FFmpeg fails because of the input, Run returns an *InputError;
// other failures are plain errors carrying the tail of FFmpeg's stderr.
// For HLS, Run writes the master playlist once FFmpeg has succeeded, and
// for a storyboard its WebVTT index. A chunked encode's whole-input part
// with nothing to encode only creates its directory.
func Run(ctx context.Context, ffmpegBin string, cmd Command, durationSeconds float64, report func(float64)) error {
	if report == nil {
		report = func(float64) {}
	}
	if cmd.nothing {
		report(1)
		if err := os.MkdirAll(cmd.OutDir, 0o755); err != nil {
			return fmt.Errorf("create output directory: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(cmd.OutDir, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	for _, d := range cmd.Dirs {
		if err := os.MkdirAll(filepath.Join(cmd.OutDir, filepath.FromSlash(d)), 0o755); err != nil {
			return fmt.Errorf("create output directory: %w", err)
		}
	}

	c := command(ctx, ffmpegBin, cmd.Args...)
	c.Dir = cmd.OutDir
	c.Cancel = func() error { return c.Process.Signal(os.Interrupt) }
	c.WaitDelay = stopGrace
	stderr := newTailBuffer(stderrLines)
	c.Stderr = stderr
	pr, pw := io.Pipe()
	c.Stdout = pw

	parsed := make(chan error, 1)
	go func() {
		err := ParseProgress(pr, durationSeconds, report)
		_, _ = io.Copy(io.Discard, pr) // never block FFmpeg's writes
		parsed <- err
	}()

	runErr := c.Run()
	_ = pw.Close()
	progressErr := <-parsed

	if ctx.Err() != nil {
		return fmt.Errorf("ffmpeg stopped: %w", ctx.Err())
	}
	if runErr != nil {
		var exitErr *exec.ExitError
		if !errors.As(runErr, &exitErr) {
			return fmt.Errorf("run ffmpeg: %w", runErr)
		}
		lines := stderr.Lines()
		input := inputArg(cmd.Args)
		remote := input != "" && !strings.HasPrefix(input, "file:")
		if remote {
			// A presigned URL carries a signature: no URL, whole or cut
			// short by the tail buffer, stays in an error.
			for i, l := range lines {
				lines[i] = anyURL.ReplaceAllString(l, "input")
			}
			input = "input"
		}
		if ie := classifyInputFailure(lines, input); ie != nil {
			return ie
		}
		if exitErr.ExitCode() == decodeErrorExit && !remote {
			// More of the input failed to decode than -max_error_rate
			// allows: the media is damaged, and a retry reads the same
			// bytes. (Over HTTP a dropped connection can look the same.)
			return inputError("the file's media is damaged: FFmpeg could not decode too much of it")
		}
		return fmt.Errorf("ffmpeg failed (%w): %s", runErr, strings.Join(lines, "\n"))
	}
	if progressErr != nil {
		return progressErr
	}
	if err := finishSubtitles(cmd, durationSeconds); err != nil {
		return err
	}
	if err := declareClosedCaptions(cmd); err != nil {
		return err
	}
	if cmd.expects(masterPlaylist) {
		if err := finishCMAFPlaylists(cmd); err != nil {
			return err
		}
		if err := writeMaster(cmd); err != nil {
			return err
		}
	}
	return writeStoryboardIndex(cmd)
}

// inputArg returns the argument after -i.
func inputArg(args []string) string {
	for i, a := range args[:max(0, len(args)-1)] {
		if a == "-i" {
			return args[i+1]
		}
	}
	return ""
}

// expects reports whether the command plans an output named name.
func (c Command) expects(name string) bool {
	return slices.ContainsFunc(c.ExpectedOutputs, func(o Output) bool { return o.Name == name })
}
