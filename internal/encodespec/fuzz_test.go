package encodespec

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse checks that Parse never panics, that it either returns a valid
// spec or field errors, that an accepted spec survives a JSON round trip,
// that what it accepts is text (valid UTF-8, no NUL anywhere), and that
// encoding/json decodes an accepted document to the same spec.
func FuzzParse(f *testing.F) {
	for _, name := range BuiltinNames() {
		s, _ := Builtin(name)
		raw, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"renditions": [{"codec": "h264", "height": "720"}], "x": [1, {"y": null}]}`))
	f.Add([]byte(`{"renditions": [{"codec": "av1", "crf": 30}], "packaging": "mp4"} trailing`))
	f.Add([]byte(`{"audio": {"loudnorm": {"integrated_lufs": -1e999}}}`))
	f.Add([]byte(`{"renditions": [{"name": "a\u0000", "codec": "h264", "crf": 23}], "packaging": "mp4"}`))
	f.Add([]byte(`{"renditions": [{"name": "a\ud800", "codec": "h264", "crf": 23}], "packaging": "mp4"}`))
	f.Add([]byte("{\"renditions\": [{\"name\": \"a\xff\", \"codec\": \"h264\", \"crf\": 23}], \"packaging\": \"mp4\"}"))
	f.Add([]byte(`{"renditions": [{"codec": "h264", "crf": 23, "crf": 24}], "packaging": "mp4", "packaging": "hls"}`))
	f.Add([]byte(`{"renditions": [{"codec": "h264", "crf": 23.0, "height": 1e3}], "packaging": "mp4"}`))
	f.Add([]byte(`{"Renditions": [{"Codec": "h264", "crf": 23}], "packaging": "mp4"}`))

	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := Parse(raw)
		if err != nil {
			errs := fieldErrors(t, err)
			if len(errs) == 0 {
				t.Fatal("error without field errors")
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid spec: %v", err)
		}
		if !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 || bytes.Contains(raw, []byte(`\u0000`)) {
			t.Fatalf("Parse accepted a document that is no text: %q", raw)
		}
		var std Spec
		if err := json.Unmarshal(raw, &std); err != nil {
			t.Fatalf("encoding/json refuses what Parse accepted: %v: %q", err, raw)
		}
		std.Normalize()
		if diff := cmp.Diff(s, std); diff != "" {
			t.Fatalf("encoding/json decodes %q differently (-Parse +encoding/json):\n%s", raw, diff)
		}
		again, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(again)
		if err != nil {
			t.Fatalf("round trip of %s: %v", again, err)
		}
		if diff := cmp.Diff(s, back); diff != "" {
			t.Fatalf("round trip mismatch (-first +second):\n%s", diff)
		}
	})
}
