package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// FuzzDecode checks Decode against oracles that share none of its code:
// it never panics; it returns a syntax error, field errors or nil; what it
// accepts is valid UTF-8 with no \u0000 or lone surrogate escape and no key
// given twice in any object, and encoding/json accepts it too, both into
// doc and into any.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"title":"café \ud83c\udfac","count":3,"items":[{"name":"a","bitrate_kbps":900}],"labels":{"k":"v"}}`,
		`{"spec":{"renditions":[{"codec":"h264"},{"codec":"h264","codec":"vp9"}]},"extra":[1,"two",null,true]}`,
		`{"title":"a\u0000b"}`, "{\"title\":\"a\x00b\"}", `{"title":"\ud800"}`, `{"title":"\udc00\ud800"}`,
		"{\"title\":\"\xff\xfe\"}", "{\"labels\":{\"\xed\xa0\x80\":\"x\"}}", `{"title":"\\u0000"}`,
		`{"labels":{"a":"1","a":"2"}}`, `{"title":"x","TITLE":"y"}`, `{"count":1.5,"small":300,"ratio":1e999}`,
		`{"items":[{"name":"a"},{"name":"b","bitrate_kbps":"9"}]}`, `[1,2]`, `null`, ``, `{"title":"a"} {}`,
		`{"extra":[[[[[[[[[[{"a":{}}]]]]]]]]]]}`, `{"title":"\u00e9\/\b\f\n\r\t\"\\"}`, `{"narrow":-3.5e38}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var d doc
		err := Decode(raw, &d)
		var se *SyntaxError
		if _, ok := validation.As(err); err != nil && !ok && !errors.As(err, &se) {
			t.Fatalf("Decode returned %T: %v", err, err)
		}
		if err != nil {
			return
		}
		if !utf8.Valid(raw) {
			t.Fatalf("accepted invalid UTF-8: %q", raw)
		}
		if bytes.IndexByte(raw, 0) >= 0 {
			t.Fatalf("accepted a raw NUL: %q", raw)
		}
		if esc := badEscape(raw); esc != "" {
			t.Fatalf("accepted %s: %q", esc, raw)
		}
		if path := duplicateKey(t, raw); path != "" {
			t.Fatalf("accepted a duplicate key at %s: %q", path, raw)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var std doc
		if err := dec.Decode(&std); err != nil {
			t.Fatalf("encoding/json refuses what Decode accepted: %v: %q", err, raw)
		}
		if err := json.Unmarshal(raw, new(any)); err != nil {
			t.Fatalf("encoding/json refuses as any what Decode accepted: %v: %q", err, raw)
		}
		if err := Valid(raw); err != nil {
			t.Fatalf("Valid refuses what Decode accepted: %v: %q", err, raw)
		}
	})
}

// badEscape scans raw for a \u0000 escape or a \u escape of a surrogate
// that is not a high one followed by a low one. Backslashes occur only in
// strings in valid JSON, so the scan needs no JSON grammar.
func badEscape(raw []byte) string {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // \" \\ and friends
			continue
		}
		r := hexAt(raw, i+2)
		switch {
		case r == 0:
			return `\u0000`
		case r >= 0xdc00 && r < 0xe000:
			return "a lone low surrogate"
		case r >= 0xd800 && r < 0xdc00:
			if i+7 >= len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
				return "a lone high surrogate"
			}
			if lo := hexAt(raw, i+8); lo < 0xdc00 || lo >= 0xe000 {
				return "a high surrogate without a low one"
			}
			i += 6
		}
		i += 5
	}
	return ""
}

func hexAt(raw []byte, i int) int {
	if i+4 > len(raw) {
		return -1
	}
	n, err := strconv.ParseUint(string(raw[i:i+4]), 16, 32)
	if err != nil {
		return -1
	}
	return int(n)
}

// duplicateKey walks raw with encoding/json's tokenizer and returns where a
// key occurs twice in one object, or "".
func duplicateKey(t *testing.T, raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		object  bool
		keys    map[string]bool
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return ""
		}
		if err != nil {
			t.Fatalf("encoding/json cannot tokenize what Decode accepted: %v: %q", err, raw)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if key, ok := tok.(string); ok {
				if top.keys[key] {
					return strconv.Quote(key)
				}
				top.keys[key] = true
				top.wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = true // a member's value ended
		}
	}
}
