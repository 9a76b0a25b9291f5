package encodespec

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse checks that Parse never panics, that it either returns a valid
// spec or field errors, and that an accepted spec survives a JSON round trip.
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
