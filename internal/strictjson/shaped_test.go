package strictjson

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// names is a Shaped type: one name, or a list of them joined by "+".
type names string

func (names) JSONShapes() []any { return []any{"", []string(nil)} }

func (n *names) UnmarshalJSON(data []byte) error {
	var one string
	if json.Unmarshal(data, &one) == nil {
		*n = names(one)
		return nil
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return err
	}
	*n = names(strings.Join(list, "+"))
	return nil
}

// twoStrings is Shaped with two shapes of one JSON kind, which Decode
// could not tell apart.
type twoStrings string

func (twoStrings) JSONShapes() []any               { return []any{"", new(string)} }
func (t *twoStrings) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, (*string)(t)) }

func TestDecodeShaped(t *testing.T) {
	t.Parallel()
	type request struct {
		Names names `json:"names"`
	}
	for raw, want := range map[string]names{
		`{"names": "a"}`:        "a",
		`{"names": ["a", "b"]}`: "a+b",
		`{"names": null}`:       "",
	} {
		var r request
		require.NoError(t, Decode([]byte(raw), &r), raw)
		assert.Equal(t, want, r.Names, raw)
	}

	for raw, want := range map[string][2]string{
		`{"names": 3}`:                 {"names", "must be a string or an array, got the number 3"},
		`{"names": {"a": 1}}`:          {"names", "must be a string or an array, got an object"},
		`{"names": true}`:              {"names", "must be a string or an array, got a boolean"},
		`{"names": ["a", 2]}`:          {"names[1]", "must be a string, got the number 2"},
		`{"names": "a\u0000"}`:         {"names", "NUL character"},
		`{"names": ["a"], "other": 1}`: {"other", "unknown field"},
	} {
		var r request
		errs := fieldErrors(t, Decode([]byte(raw), &r))
		require.Len(t, errs, 1, raw)
		assert.Equal(t, want[0], errs[0].Field, raw)
		assert.Contains(t, errs[0].Detail, want[1], raw)
		assert.Empty(t, r.Names, "a refused document is not decoded: %s", raw)
	}

	assert.ErrorIs(t, Decode([]byte(`{}`), new(struct{ T twoStrings })), ErrUnsupportedType)
}
