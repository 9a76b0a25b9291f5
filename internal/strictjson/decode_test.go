package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/validation"
)

type inner struct {
	Name    string `json:"name"`
	Bitrate int    `json:"bitrate_kbps,omitempty"`
}

type embedded struct {
	Note string `json:"note,omitempty"`
}

// doc is a request-like type with every kind Decode supports.
type doc struct {
	embedded
	Title    string            `json:"title"`
	Count    *int              `json:"count,omitempty"`
	Small    int8              `json:"small,omitempty"`
	Size     uint16            `json:"size,omitempty"`
	Ratio    float64           `json:"ratio,omitempty"`
	Narrow   float32           `json:"narrow,omitempty"`
	On       bool              `json:"on,omitempty"`
	Items    []inner           `json:"items,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Spec     json.RawMessage   `json:"spec,omitempty"`
	Extra    any               `json:"extra,omitempty"`
	Nested   *inner            `json:"nested,omitempty"`
	Ignored  string            `json:"-"`
	internal string            //nolint:unused // an unexported field the decoder must refuse to fill (the "unexported" case)
}

func TestDecodeAccepts(t *testing.T) {
	t.Parallel()
	raw := `{"title":"caf\u00e9 \ud83c\udfac ✓ \"q\" \\ \/ \b\f\n\r\t","count":3,"small":-128,"size":65535,"ratio":-1.5e-3,
		"narrow":3.4e38,"on":true,"items":[{"name":"a","bitrate_kbps":900},{"name":"b"}],"labels":{"Zone":"x","zone":"y"},
		"spec":{"any":[1e999,"\ufffd",{"a":null}]},"extra":[1,"two",{"three":3}],"nested":null,"note":"n"}`
	var got doc
	require.NoError(t, Decode([]byte(raw), &got))
	var want doc
	require.NoError(t, json.Unmarshal([]byte(raw), &want))
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(doc{})); diff != "" {
		t.Errorf("Decode differs from encoding/json (-want +got):\n%s", diff)
	}
	assert.Equal(t, "café 🎬 ✓ \"q\" \\ / \b\f\n\r\t", got.Title)
	assert.Equal(t, "n", got.Note)
}

func TestDecodeNullIsAbsent(t *testing.T) {
	t.Parallel()
	got := doc{Title: "kept"}
	require.NoError(t, Decode([]byte(`{"count":null,"items":null,"nested":null,"on":null}`), &got))
	assert.Equal(t, "kept", got.Title)
	assert.Nil(t, got.Count)
	require.NoError(t, Decode([]byte(` null `), &got))
}

// TestDecodeRefusesText: every way text can fail to be text is refused,
// named by the path of its value, whether in a value or in a key, at any
// depth, under any type.
func TestDecodeRefusesText(t *testing.T) {
	t.Parallel()
	bad := map[string]struct{ text, detail string }{
		"raw NUL":              {"a\x00b", "NUL character (U+0000)"},
		"escaped NUL":          {`a\u0000b`, `NUL character (written \u0000)`},
		"lone high surrogate":  {`a\ud800b`, `\ud800, half of a UTF-16 surrogate pair`},
		"high then not low":    {`\ud83d\u0041`, `\ud83d, half`},
		"high at end":          {`\udbff`, `\udbff, half`},
		"lone low surrogate":   {`\udc00x`, `\udc00, half`},
		"reversed pair":        {`\ude00\ud83d`, `\ude00, half`},
		"invalid byte":         {"a\xffb", "not valid UTF-8 (byte 0xff"},
		"truncated sequence":   {"a\xe2\x82", "not valid UTF-8 (byte 0xe2"},
		"overlong encoding":    {"\xc0\xaf", "not valid UTF-8 (byte 0xc0"},
		"UTF-8 surrogate":      {"\xed\xa0\x80", "not valid UTF-8 (byte 0xed"},
		"raw control":          {"a\x01b", `unescaped; JSON strings must write it as \u0001`},
		"raw newline":          {"a\nb", `U+000A unescaped`},
		"problem after a good": {`ok\u00e9\u0000`, "NUL"},
	}
	places := map[string]struct{ doc, path string }{
		"struct field":            {`{"title":"%s"}`, "title"},
		"map value":               {`{"labels":{"k":"%s"}}`, "labels.k"},
		"slice element":           {`{"items":[{"name":"ok"},{"name":"%s"}]}`, "items[1].name"},
		"raw message":             {`{"spec":{"renditions":[{},{},{"name":"%s"}]}}`, "spec.renditions[2].name"},
		"interface":               {`{"extra":["x","%s"]}`, "extra[1]"},
		"value of the wrong type": {`{"count":"%s"}`, "count"},
		"unknown field":           {`{"colour":{"x":"%s"}}`, "colour.x"},
	}
	for name, b := range bad {
		for where, p := range places {
			t.Run(name+" in "+where, func(t *testing.T) {
				t.Parallel()
				errs := fieldErrors(t, decodeDoc(strings.Replace(p.doc, "%s", b.text, 1)))
				require.Contains(t, paths(errs), p.path)
				assert.Contains(t, detailOf(errs, p.path), b.detail)
			})
		}
		t.Run(name+" in a key", func(t *testing.T) {
			t.Parallel()
			errs := fieldErrors(t, decodeDoc(`{"labels":{"`+b.text+`":"v"}}`))
			require.Len(t, errs, 1)
			assert.True(t, strings.HasPrefix(errs[0].Field, "labels."), errs[0].Field)
			assert.Contains(t, errs[0].Detail, "the key ")
			assert.Contains(t, errs[0].Detail, b.detail)
		})
	}
}

func TestDecodeRefusesDuplicateKeys(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ doc, path string }{
		"top level":              {`{"title":"a","title":"b"}`, "title"},
		"same value":             {`{"title":"a","on":true,"title":"a"}`, "title"},
		"map key":                {`{"labels":{"k":"1","k":"2"}}`, "labels.k"},
		"nested struct":          {`{"items":[{"name":"a"},{"name":"a","name":"b"}]}`, "items[1].name"},
		"raw message":            {`{"spec":{"renditions":[{"codec":"h264","codec":"vp9"}]}}`, "spec.renditions[0].codec"},
		"interface deep":         {`{"extra":[[[{"a":{"b":1,"b":2}}]]]}`, "extra[0][0][0].a.b"},
		"unknown field's object": {`{"colour":{"x":1,"x":1}}`, "colour.x"},
		"escaped spelling":       {`{"title":"a","\u0074itle":"b"}`, "title"},
		"empty key":              {`{"labels":{"":"a","":"b"}}`, "labels."},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			errs := fieldErrors(t, decodeDoc(tc.doc))
			require.Contains(t, paths(errs), tc.path)
			assert.Contains(t, detailOf(errs, tc.path), "more than once")
		})
	}
}

// TestDecodeNamesFullPaths: type and range errors name the whole path,
// array indices included, in plain words.
func TestDecodeNamesFullPaths(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ doc, path, detail string }{
		"fraction":         {`{"items":[{"name":"a"},{"name":"b","bitrate_kbps":1.5}]}`, "items[1].bitrate_kbps", "must be a whole number without fraction or exponent, got 1.5"},
		"exponent":         {`{"count":1e3}`, "count", "must be a whole number without fraction or exponent, got 1e3"},
		"string for int":   {`{"items":[{"bitrate_kbps":"900"}]}`, "items[0].bitrate_kbps", `must be a whole number, got the string "900"`},
		"int8 range":       {`{"small":128}`, "small", "must be a whole number from -128 to 127, got 128"},
		"uint negative":    {`{"size":-1}`, "size", "must be a whole number from 0 to 65535, got -1"},
		"int64 overflow":   {`{"count":99999999999999999999}`, "count", "must be a whole number from"},
		"float range":      {`{"ratio":1e999}`, "ratio", "number 1e999 is out of range"},
		"float32 range":    {`{"narrow":1e39}`, "narrow", "number 1e39 is out of range"},
		"interface range":  {`{"extra":{"n":[-1e400]}}`, "extra.n[0]", "out of range"},
		"bool for string":  {`{"title":true}`, "title", "must be a string, got a boolean"},
		"number for bool":  {`{"on":1}`, "on", "must be true or false, got the number 1"},
		"array for object": {`{"nested":[]}`, "nested", "must be an object, got an array"},
		"object for array": {`{"items":{}}`, "items", "must be an array, got an object"},
		"map value type":   {`{"labels":{"k":1}}`, "labels.k", "must be a string, got the number 1"},
		"long string":      {`{"count":"` + strings.Repeat("x", 50) + `"}`, "count", `got the string "` + strings.Repeat("x", 40) + `…"`},
		"unknown field":    {`{"items":[{"name":"a","Name":"b"}]}`, "items[0].Name", "unknown field; allowed fields here: bitrate_kbps, name"},
		"ignored field":    {`{"Ignored":"x"}`, "Ignored", "unknown field"},
		"unexported":       {`{"internal":"x"}`, "internal", "unknown field"},
		"case differs":     {`{"TITLE":"x"}`, "TITLE", "unknown field"},
		"root type":        {`[1]`, "", "expected a JSON object, got an array"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			errs := fieldErrors(t, decodeDoc(tc.doc))
			require.Equal(t, []string{tc.path}, paths(errs))
			assert.Contains(t, errs[0].Detail, tc.detail)
		})
	}
}

func TestDecodeReportsEveryProblemInOrder(t *testing.T) {
	t.Parallel()
	errs := fieldErrors(t, decodeDoc(`{"title":1,"items":[{"name":"\u0000","x":2}],"title":"again","labels":{"a":"\ud800"}}`))
	assert.Equal(t, []string{"title", "items[0].name", "items[0].x", "title", "labels.a"}, paths(errs))

	many := `{"labels":{` + strings.Repeat(`"k":"v",`, 500) + `"k":"v"}}`
	errs = fieldErrors(t, decodeDoc(many))
	assert.Len(t, errs, MaxErrors, "the report stops at MaxErrors")
}

func TestDecodeSyntax(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		doc, path, msg string
		offset         int64
	}{
		"empty":                          {"  ", "", "empty", 2},
		"truncated":                      {`{"items":[{"name":"a"`, "items[0]", "ends early", 21},
		"inside a string":                {`{"title":"ab`, "title", "ends inside a string", 12},
		"missing colon":                  {`{"title" "a"}`, "title", "expected ':'", 9},
		"missing comma":                  {`{"items":[1 2]}`, "items", "expected ',' or ']'", 12},
		"bare word":                      {`{"title":nope}`, "title", "expected a value, found 'n'", 9},
		"single quotes":                  {`{'title':1}`, "", "expected a string key", 1},
		"trailing comma":                 {`{"title":"a",}`, "", "expected a string key, found '}'", 13},
		"bad escape":                     {`{"title":"\x"}`, "title", `invalid escape '\x'`, 11},
		"short \\u":                      {`{"title":"\u12"}`, "title", "four hex digits", 12},
		"leading zero":                   {`{"count":01}`, "", "expected ',' or '}'", 10},
		"bare minus":                     {`{"count":-}`, "count", "expected a digit", 10},
		"dot without digits":             {`{"ratio":1.}`, "ratio", "after the decimal point", 11},
		"exponent no digits":             {`{"ratio":1e+}`, "ratio", "in the exponent", 12},
		"trailing data":                  {`{"title":"a"} {}`, "", "unexpected data after the JSON object", 14},
		"trailing garbage":               {`nullx`, "", "unexpected data after the JSON null", 4},
		"invalid UTF-8 outside a string": {"{\xff}", "", "expected a string key, found byte 0xff", 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := decodeDoc(tc.doc)
			var se *SyntaxError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.path, se.Path)
			assert.Contains(t, se.Msg, tc.msg)
			assert.Equal(t, tc.offset, se.Offset, "offset of %q", tc.doc)
			assert.Error(t, json.Unmarshal([]byte(tc.doc), new(any)), "encoding/json refuses it too")
		})
	}
}

// TestDecodeDepth: nesting past MaxDepth stops the walk with a field error
// where it happens; MaxDepth levels are fine.
func TestDecodeDepth(t *testing.T) {
	t.Parallel()
	nest := func(n int) string { return strings.Repeat(`{"extra":`, n) + `{}` + strings.Repeat("}", n) }
	require.NoError(t, decodeDoc(nest(MaxDepth-1)))
	errs := fieldErrors(t, decodeDoc(nest(MaxDepth)))
	assert.Equal(t, []string{strings.TrimSuffix(strings.Repeat("extra.", MaxDepth), ".")}, paths(errs))
	assert.Contains(t, errs[0].Detail, "nest more than 100 levels deep")
	errs = fieldErrors(t, decodeDoc(`{"colour":1,"extra":`+strings.Repeat("[", 5000)))
	assert.Equal(t, []string{"colour", "extra" + strings.Repeat("[0]", MaxDepth-1)}, paths(errs), "the walk stops at the limit, before the missing brackets")
}

func TestDecodeUnsupportedTypes(t *testing.T) {
	t.Parallel()
	for name, v := range map[string]any{
		"bytes":        new(struct{ B []byte }),
		"int map keys": new(map[int]string),
		"unmarshaler":  new(struct{ T time.Time }),
		"json.Number":  new(struct{ N json.Number }),
		"string opt": new(struct {
			N int `json:"n,string"`
		}),
		"channel":     new(chan int),
		"not pointer": doc{},
		"nil":         (*doc)(nil),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.ErrorIs(t, Decode([]byte(`{}`), v), ErrUnsupportedType)
		})
	}
	type recursive struct {
		Next *recursive `json:"next"`
		N    int        `json:"n"`
	}
	var r recursive
	require.NoError(t, Decode([]byte(`{"next":{"next":{"n":2}}}`), &r))
	assert.Equal(t, 2, r.Next.Next.N)
	errs := fieldErrors(t, Decode([]byte(`{"next":{"next":{"n":"2"}}}`), &r))
	assert.Equal(t, []string{"next.next.n"}, paths(errs))
}

func TestValid(t *testing.T) {
	t.Parallel()
	require.NoError(t, Valid([]byte(`{"a":[1,{"b":"c"}],"A":2}`)))
	errs := fieldErrors(t, Valid([]byte(`{"a":[1,{"b":"c","b":"d"}]}`)))
	assert.Equal(t, []string{"a[1].b"}, paths(errs))
	errs = fieldErrors(t, Valid([]byte(`[1e400]`)))
	assert.Equal(t, []string{"[0]"}, paths(errs))
}

func decodeDoc(raw string) error {
	var d doc
	err := Decode([]byte(raw), &d)
	if err != nil && !cmp.Equal(d, doc{}, cmp.AllowUnexported(doc{})) {
		return errors.New("a failed Decode changed its target")
	}
	return err
}

func fieldErrors(t *testing.T, err error) validation.Errors {
	t.Helper()
	require.Error(t, err)
	errs, ok := validation.As(err)
	require.Truef(t, ok, "want validation.Errors, got %T: %v", err, err)
	return errs
}

func paths(errs validation.Errors) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Field
	}
	return out
}

func detailOf(errs validation.Errors, path string) string {
	for _, e := range errs {
		if e.Field == path {
			return e.Detail
		}
	}
	return ""
}
