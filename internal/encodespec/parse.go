package encodespec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// Parse decodes raw strictly, fills defaults and validates the result.
//
// encoding/json alone accepts unknown fields silently, matches keys
// case-insensitively, keeps the last of duplicate keys and reports type
// errors without array indices; any of those would let a typo such as
// "bitrate" for "bitrate_kbps" pass unnoticed. Parse therefore first walks
// the JSON tokens against the Spec type and reports every unknown field,
// duplicate field, wrong type and trailing data as a validation.Errors whose
// field paths name the input ("renditions[0].height"). Only a document that
// has the right shape is decoded, normalized and validated. Errors at the
// document root (empty body, malformed JSON before any field) carry the
// field "".
//
// Parse does not limit the input size; the HTTP layer bounds request bodies.
func Parse(raw []byte) (Spec, error) {
	if err := checkShape(raw); err != nil {
		return Spec{}, err
	}
	var s Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		// checkShape accepted the document, so this is a bug in checkShape
		// rather than bad input; still report it as a field error.
		var errs validation.Errors
		errs.Add("", "invalid encode spec: %s", err.Error())
		return Spec{}, errs
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// shapeChecker walks a JSON token stream against a Go type, collecting field
// errors. It stops at the first syntax error because nothing after it can be
// trusted.
type shapeChecker struct {
	dec  *json.Decoder
	errs validation.Errors
}

var errSyntax = errors.New("syntax error")

func checkShape(raw []byte) error {
	c := &shapeChecker{dec: json.NewDecoder(bytes.NewReader(raw))}
	c.dec.UseNumber()
	tok, err := c.dec.Token()
	switch {
	case errors.Is(err, io.EOF):
		c.errs.Add("", "empty body: expected a JSON object describing the encode spec")
		return c.errs
	case err != nil:
		c.syntax("", err)
		return c.errs
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		c.errs.Add("", "expected a JSON object describing the encode spec, got %s", describe(tok))
		return c.errs
	}
	if err := c.value(reflect.TypeFor[Spec](), "", tok); err != nil {
		return c.errs
	}
	if _, err := c.dec.Token(); !errors.Is(err, io.EOF) {
		c.errs.Add("", "unexpected data after the JSON object: send exactly one object")
	}
	return c.errs.Err()
}

func (c *shapeChecker) syntax(path string, err error) {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		c.errs.Add(path, "malformed JSON at byte %d: %s", se.Offset, se.Error())
		return
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		c.errs.Add(path, "malformed JSON: the document ends early")
		return
	}
	c.errs.Add(path, "malformed JSON: %s", err.Error())
}

// next reads one token, recording a syntax error against path.
func (c *shapeChecker) next(path string) (json.Token, error) {
	tok, err := c.dec.Token()
	if err != nil {
		c.syntax(path, err)
		return nil, errSyntax
	}
	return tok, nil
}

// value checks the JSON value that starts with tok against t. It always
// consumes the whole value so the walk can carry on and report further
// errors. null is accepted everywhere and means "absent", as in encoding/json.
func (c *shapeChecker) value(t reflect.Type, path string, tok json.Token) error {
	if tok == nil {
		return nil
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			c.errs.Add(path, "must be an object, got %s", describe(tok))
			return c.skip(path, tok)
		}
		return c.object(t, path)
	case reflect.Slice:
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			c.errs.Add(path, "must be an array, got %s", describe(tok))
			return c.skip(path, tok)
		}
		for i := 0; c.dec.More(); i++ {
			elemPath := fmt.Sprintf("%s[%d]", path, i)
			tok, err := c.next(elemPath)
			if err != nil {
				return err
			}
			if err := c.value(t.Elem(), elemPath, tok); err != nil {
				return err
			}
		}
		_, err := c.next(path) // ']'
		return err
	case reflect.String:
		if _, ok := tok.(string); !ok {
			c.errs.Add(path, "must be a string, got %s", describe(tok))
			return c.skip(path, tok)
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			c.errs.Add(path, "must be true or false, got %s", describe(tok))
			return c.skip(path, tok)
		}
	case reflect.Int:
		n, ok := tok.(json.Number)
		if !ok {
			c.errs.Add(path, "must be an integer, got %s", describe(tok))
			return c.skip(path, tok)
		}
		if _, err := strconv.ParseInt(n.String(), 10, strconv.IntSize); err != nil {
			c.errs.Add(path, "must be a whole number without fraction or exponent, got %s", n)
		}
	case reflect.Float64:
		n, ok := tok.(json.Number)
		if !ok {
			c.errs.Add(path, "must be a number, got %s", describe(tok))
			return c.skip(path, tok)
		}
		if _, err := n.Float64(); err != nil {
			c.errs.Add(path, "number %s is out of range", n)
		}
	default:
		panic(fmt.Sprintf("encodespec: shape check has no rule for %s at %q", t, path))
	}
	return nil
}

// object checks the members of a JSON object (its '{' already read) against
// the json-tagged fields of struct type t.
func (c *shapeChecker) object(t reflect.Type, path string) error {
	fields := jsonFields(t)
	seen := make(map[string]bool, len(fields))
	for c.dec.More() {
		tok, err := c.next(path)
		if err != nil {
			return err
		}
		key, _ := tok.(string) // object keys are always strings
		fieldPath := key
		if path != "" {
			fieldPath = path + "." + key
		}
		tok, err = c.next(fieldPath)
		if err != nil {
			return err
		}
		ft, known := fields[key]
		switch {
		case !known:
			c.errs.Add(fieldPath, "unknown field; allowed fields here: %s", strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
			err = c.skip(fieldPath, tok)
		case seen[key]:
			c.errs.Add(fieldPath, "field appears more than once; give it once")
			err = c.skip(fieldPath, tok)
		default:
			seen[key] = true
			err = c.value(ft, fieldPath, tok)
		}
		if err != nil {
			return err
		}
	}
	_, err := c.next(path) // '}'
	return err
}

// skip consumes the rest of a value whose first token is tok.
func (c *shapeChecker) skip(path string, tok json.Token) error {
	d, ok := tok.(json.Delim)
	if !ok || (d != '{' && d != '[') {
		return nil
	}
	for depth := 1; depth > 0; {
		tok, err := c.next(path)
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
		}
	}
	return nil
}

// jsonFields maps the JSON names of t's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out[name] = f.Type
	}
	return out
}

// describe names a JSON token's type for error details.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + v.String()
	case string:
		if r := []rune(v); len(r) > 40 {
			v = string(r[:40]) + "…"
		}
		return "the string " + strconv.Quote(v)
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	default:
		return fmt.Sprintf("%T", tok)
	}
}
