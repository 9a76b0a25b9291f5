package validation

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TextProblem says why s cannot be stored as text, or "" when it can.
// Postgres refuses the NUL character and invalid UTF-8 in text and jsonb,
// so a value holding either must be refused where it enters, with its
// field named, instead of failing in the database. JSON bodies are checked
// by internal/strictjson; this is for query and path parameters, headers
// and other text that does not arrive as JSON.
func TextProblem(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Sprintf("contains the NUL character (U+0000) at byte %d, which cannot be stored", i)
	}
	if !utf8.ValidString(s) {
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return fmt.Sprintf("is not valid UTF-8 (byte 0x%02x at offset %d)", s[i], i)
			}
			i += size
		}
	}
	return ""
}

// MaxFilenameBytes bounds a file name, as most file systems do.
const MaxFilenameBytes = 255

// FilenameProblem says why name cannot be an asset's file name, or "" when
// it can. A file name is one plain path element that every client can show
// and save as it is: valid UTF-8 of 1 to MaxFilenameBytes bytes, no path
// separator (/ or \), not made only of dots (".", ".." and the like, which
// name directories or vanish on Windows), no leading or trailing spaces,
// and no control, format or separator characters. Format characters
// include the bidirectional controls (U+202A–U+202E, U+2066–U+2069,
// U+200E, U+200F, U+061C) that make "clip\u202Egnp.exe" show as
// "clipexe.png", and zero-width characters that make two names look alike.
//
// Names are refused, never rewritten: a client that sends "../x.mp4" or a
// name with a hidden character has a bug or an intent the server should
// not guess at, and a name stored as sent is the name the client sees.
func FilenameProblem(name string) string {
	const allowed = "must be a plain file name such as clip.mp4"
	if p := TextProblem(name); p != "" {
		return p
	}
	switch {
	case name == "":
		return "is required"
	case len(name) > MaxFilenameBytes:
		return fmt.Sprintf("must be at most %d bytes, got %d", MaxFilenameBytes, len(name))
	case strings.ContainsAny(name, `/\`):
		return allowed + ": no / or \\ (path separators)"
	case strings.Trim(name, ".") == "":
		return allowed + `: not "." or ".."`
	case strings.TrimSpace(name) != name:
		return allowed + ": no leading or trailing spaces"
	}
	for _, r := range name {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			return fmt.Sprintf("%s: no control or invisible formatting characters (found U+%04X)", allowed, r)
		}
	}
	return ""
}

// Storable returns s as text Postgres can store: every NUL and every byte
// that is not valid UTF-8 becomes U+FFFD. It is for text MpegFlow records
// from the outside without a field to name — a webhook receiver's answer,
// an encoder's error — where refusing would lose the record.
func Storable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// Truncate shortens s to at most n bytes without splitting a UTF-8
// sequence, marking a cut with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
