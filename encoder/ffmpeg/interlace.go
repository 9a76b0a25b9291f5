package ffmpeg

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
)

// idetFrames is how many frames DetectFieldOrder looks at.
const idetFrames = 150

// idetSummary is idet's multi-frame verdict, printed when the filter ends.
var idetSummary = regexp.MustCompile(`Multi frame detection: TFF:\s*(\d+)\s+BFF:\s*(\d+)\s+Progressive:\s*(\d+)\s+Undetermined:\s*(\d+)`)

// DetectFieldOrder looks at the first idetFrames frames of the input's
// video with FFmpeg's idet filter, for interlaced pictures in a stream that
// does not say its field order (the encoder runs it for "unknown" only:
// idet takes some sharp, fast synthetic patterns, FFmpeg's testsrc2 among
// them, for interlaced video). It answers "tt" or "bb"
// when at least 20 frames were decided and interlaced ones outnumber
// progressive ones three to one, "progressive" when enough were decided
// otherwise, and "" when too few were. The input is opened as Probe
// opened it (in.Container, the file protocol alone).
func DetectFieldOrder(ctx context.Context, ffmpegBin, file string, in MediaInfo) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", fmt.Errorf("detect field order: %w", err)
	}
	args := append([]string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "info"}, inputOptions(in.Container)...)
	args = append(args, "-i", "file:"+abs, "-map", "0:V:0", "-vf", "idet", "-frames:v", strconv.Itoa(idetFrames), "-an", "-sn", "-dn", "-f", "null", "-")
	var stderr bytes.Buffer
	cmd := command(ctx, ffmpegBin, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("detect field order: %w: %s", err, lastLines(stderr.Bytes(), 5))
	}
	m := idetSummary.FindSubmatch(stderr.Bytes())
	if m == nil {
		return "", fmt.Errorf("detect field order: idet printed no summary: %s", lastLines(stderr.Bytes(), 5))
	}
	n := make([]int, 4)
	for i := range n {
		n[i], _ = strconv.Atoi(string(m[i+1]))
	}
	tff, bff, progressive := n[0], n[1], n[2]
	switch {
	case tff+bff+progressive < 20:
		return "", nil
	case tff+bff >= 3*progressive && tff >= bff:
		return "tt", nil
	case tff+bff >= 3*progressive:
		return "bb", nil
	}
	return "progressive", nil
}

// lastLines is the end of a command's output, for an error message.
func lastLines(out []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
