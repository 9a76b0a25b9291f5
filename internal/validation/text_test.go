package validation

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTextProblem(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]string{
		"":                  "",
		"plain":             "",
		"café 🎬\t\n":        "",
		"\uFFFD":            "", // the replacement character itself is text
		"a\x00b":            "NUL character (U+0000) at byte 1",
		"ab\xff":            "not valid UTF-8 (byte 0xff at offset 2)",
		"\xed\xa0\x80":      "not valid UTF-8 (byte 0xed at offset 0)", // an encoded surrogate
		"é\xe2\x82":         "not valid UTF-8 (byte 0xe2 at offset 2)",
		"\xc0\xaf overlong": "not valid UTF-8 (byte 0xc0",
	} {
		got := TextProblem(text)
		if want == "" {
			assert.Empty(t, got, "%q", text)
			continue
		}
		assert.Contains(t, got, want, "%q", text)
	}
}

func TestFilenameProblem(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"clip.mp4", "My Holiday (2026).mov", "日本語の動画.mkv", ".hidden", "a..b.mp4", "...mp4", "x",
		"naïve café.webm", "emoji 🎬.mp4", "12:30 meeting.mp4", "a\u00a0b.mp4", strings.Repeat("x", MaxFilenameBytes),
	} {
		assert.Empty(t, FilenameProblem(name), "%q is a plain file name", name)
	}
	for name, want := range map[string]string{
		"":                       "is required",
		strings.Repeat("x", 256): "at most 255 bytes",
		strings.Repeat("é", 128): "at most 255 bytes, got 256",
		".":                      `not "." or ".."`,
		"..":                     `not "." or ".."`,
		"...":                    `not "." or ".."`,
		"../etc/passwd":          "no / or \\",
		`..\..\x`:                "no / or \\",
		"a/b.mp4":                "no / or \\",
		`C:\x.mp4`:               "no / or \\",
		"/abs.mp4":               "no / or \\",
		" clip.mp4":              "no leading or trailing spaces",
		"clip.mp4 ":              "no leading or trailing spaces",
		"clip.mp4\u3000":         "no leading or trailing spaces",
		"clip\u202egnp.exe":      "U+202E", // RIGHT-TO-LEFT OVERRIDE
		"clip\u202a.mp4":         "U+202A",
		"clip\u2066.mp4":         "U+2066",
		"clip\u2069.mp4":         "U+2069",
		"clip\u200e.mp4":         "U+200E",
		"clip\u200f.mp4":         "U+200F",
		"clip\u061c.mp4":         "U+061C",
		"cl\u200bip.mp4":         "U+200B", // zero width space
		"\ufeffclip.mp4":         "U+FEFF",
		"clip\u00ad.mp4":         "U+00AD", // soft hyphen
		"clip\n.mp4":             "U+000A",
		"clip\x7f.mp4":           "U+007F",
		"clip\u0085.mp4":         "U+0085",
		"clip\u2028.mp4":         "U+2028",
		"clip\x00.mp4":           "NUL",
		"clip\xff.mp4":           "not valid UTF-8",
	} {
		assert.Contains(t, FilenameProblem(name), want, "%q", name)
	}
}

func TestStorable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain":         "plain",
		"a\x00b":        "a\uFFFDb",
		"bad \xff byte": "bad \uFFFD byte",
		"cut \xe2\x82":  "cut \uFFFD",
		"日本語 stays":     "日本語 stays",
		"\x00\x00":      "\uFFFD\uFFFD",
	} {
		got := Storable(in)
		if got != want {
			t.Errorf("Storable(%q) = %q, want %q", in, got, want)
		}
		if TextProblem(got) != "" {
			t.Errorf("Storable(%q) = %q is still not storable: %s", in, got, TextProblem(got))
		}
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc…"},
		{"aé", 2, "a…"}, // é is two bytes: never split
		{"日本", 4, "日…"},
		{"日本", 6, "日本"},
	} {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
