package ffmpeg

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxRunningFraction caps progress until FFmpeg reports progress=end, so 1
// means the encode has finished (muxers may still be writing trailers when
// the last frame's time is reached).
const maxRunningFraction = 0.999

// ParseProgress reads FFmpeg's -progress output (key=value lines, each
// block closed by progress=continue or progress=end) and reports the
// fraction of durationSeconds encoded so far once per block in which it
// grew. Fractions are monotonic, within [0, 1), and 1 is reported exactly
// when progress=end arrives. The time comes from out_time_us (or
// out_time_ms, which FFmpeg also fills with microseconds, or out_time);
// "N/A" and negative times are ignored. With durationSeconds <= 0 only the
// final 1 is reported. It returns when r ends, with r's error if any.
func ParseProgress(r io.Reader, durationSeconds float64, report func(fraction float64)) error {
	sc := bufio.NewScanner(r)
	last := -1.0
	outTime := 0.0 // seconds, the largest seen
	for sc.Scan() {
		key, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		switch key {
		case "out_time_us", "out_time_ms":
			if us, err := strconv.ParseInt(val, 10, 64); err == nil && us >= 0 {
				outTime = max(outTime, float64(us)/1e6)
			}
		case "out_time":
			if t, ok := parseClock(val); ok {
				outTime = max(outTime, t)
			}
		case "progress":
			f := 0.0
			switch {
			case val == "end":
				f = 1
			case durationSeconds > 0:
				f = min(max(outTime/durationSeconds, 0), maxRunningFraction)
			default:
				continue
			}
			if f > last {
				last = f
				report(f)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read ffmpeg progress: %w", err)
	}
	return nil
}

// parseClock parses FFmpeg's HH:MM:SS.micro out_time.
func parseClock(s string) (float64, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 || strings.HasPrefix(s, "-") {
		return 0, false
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, false
	}
	return float64(h)*3600 + float64(m)*60 + sec, true
}
