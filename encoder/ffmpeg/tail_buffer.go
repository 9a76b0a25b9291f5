package ffmpeg

import (
	"bytes"
	"strings"
	"sync"
)

// noise are FFmpeg 5.1 warnings that say nothing about a failure and would
// otherwise push the useful lines out of the tail (the JPEG encoder prints
// one per scaler it sets up).
var noise = []string{
	"deprecated pixel format used",
}

// tailBuffer is an io.Writer that keeps the last max lines written to it,
// so a chatty FFmpeg cannot grow memory while the lines that explain a
// failure, which come last, are kept. Lines longer than maxLine are cut.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	lines   []string
	partial []byte
}

const maxLine = 1024

func newTailBuffer(maxLines int) *tailBuffer {
	return &tailBuffer{max: maxLines}
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			if room := maxLine - len(t.partial); room > 0 {
				t.partial = append(t.partial, p[:min(room, len(p))]...)
			}
			break
		}
		if room := maxLine - len(t.partial); room > 0 {
			t.partial = append(t.partial, p[:min(room, i)]...)
		}
		t.push(string(t.partial))
		t.partial = t.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (t *tailBuffer) push(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	for _, n := range noise {
		if strings.Contains(line, n) {
			return
		}
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

// Lines returns the kept lines, the unterminated last one included.
func (t *tailBuffer) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.lines...)
	if s := strings.TrimSpace(string(t.partial)); s != "" {
		out = append(out, s)
	}
	if len(out) > t.max {
		out = out[len(out)-t.max:]
	}
	return out
}

// String joins the kept lines for error messages.
func (t *tailBuffer) String() string { return strings.Join(t.Lines(), "\n") }
