package strictjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// ErrUnsupportedType means Decode was given a Go type it has no rule for; it
// is a programming error, found by the first Decode into that type.
var ErrUnsupportedType = errors.New("strictjson: unsupported type")

// kind is what a schema node accepts.
type kind uint8

const (
	kindAny    kind = iota // any value (interface{}: numbers must fit a float64)
	kindRaw                // any value, kept as written (json.RawMessage)
	kindString             // a string
	kindBool               // true or false
	kindInt                // a whole number of bits bits
	kindUint               // a non-negative whole number of bits bits
	kindFloat              // a number that fits a float of bits bits
	kindStruct             // an object with the fields of a struct
	kindMap                // an object with string keys and elem values
	kindSlice              // an array of elem values
	kindOneOf              // one of alts, chosen by the JSON kind of the value (a Shaped type)
)

// schema is the compiled form of a Go type: what Decode checks a JSON value
// against. Pointers are transparent (null is accepted everywhere).
type schema struct {
	kind    kind
	bits    int
	elem    *schema            // kindMap, kindSlice
	fields  map[string]*schema // kindStruct: JSON name → field
	allowed string             // kindStruct: the field names, sorted, for error details
	alts    map[byte]*schema   // kindOneOf: by the class of the value's first byte (see class)
	noun    string             // kindOneOf: what it accepts, for error details
}

// Shaped is implemented by a type whose UnmarshalJSON accepts more than one
// shape of JSON value (a string, or an array of them, say). JSONShapes
// returns one value per accepted shape, each of a type Decode has rules
// for and each of another JSON kind: a value is checked against the shape
// of its kind, then decoded by the type's own UnmarshalJSON, which gives
// it its meaning and may still refuse it (its error is then Decode's).
type Shaped interface {
	JSONShapes() []any
}

var shapedType = reflect.TypeFor[Shaped]()

// class is the JSON kind a value starting with c has: '{' object, '['
// array, '"' string, '0' number, 't' boolean; 0 for anything else (null,
// or not JSON).
func class(c byte) byte {
	switch {
	case c == '{' || c == '[' || c == '"':
		return c
	case c == '-' || (c >= '0' && c <= '9'):
		return '0'
	case c == 't' || c == 'f':
		return 't'
	}
	return 0
}

// classNouns name each class in the noun of a kindOneOf.
var classNouns = map[byte]string{'{': "an object", '[': "an array", '"': "a string", '0': "a number", 't': "true or false"}

// compileShapes compiles the shapes of a Shaped type t.
func compileShapes(t reflect.Type, shapes []any, inProgress map[reflect.Type]*schema) (*schema, error) {
	s := &schema{kind: kindOneOf, alts: map[byte]*schema{}}
	var nouns []string
	for _, v := range shapes {
		alt, err := compile(reflect.TypeOf(v), inProgress)
		if err != nil {
			return nil, fmt.Errorf("%s: shape %T: %w", t, v, err)
		}
		var c byte
		switch alt.kind {
		case kindString:
			c = '"'
		case kindSlice:
			c = '['
		case kindStruct, kindMap:
			c = '{'
		case kindInt, kindUint, kindFloat:
			c = '0'
		case kindBool:
			c = 't'
		default:
			return nil, fmt.Errorf("%w: %s: shape %T has no single JSON kind", ErrUnsupportedType, t, v)
		}
		if _, dup := s.alts[c]; dup {
			return nil, fmt.Errorf("%w: %s: two shapes are %s", ErrUnsupportedType, t, classNouns[c])
		}
		s.alts[c] = alt
		nouns = append(nouns, classNouns[c])
	}
	if len(nouns) == 0 {
		return nil, fmt.Errorf("%w: %s lists no JSON shapes", ErrUnsupportedType, t)
	}
	s.noun = strings.Join(nouns, " or ")
	return s, nil
}

var (
	anySchema = &schema{kind: kindAny}
	schemas   sync.Map // reflect.Type → *schema
	rawType   = reflect.TypeFor[json.RawMessage]()
	numType   = reflect.TypeFor[json.Number]()
	unmarshal = reflect.TypeFor[json.Unmarshaler]()
)

// schemaFor returns the compiled schema of t, compiling it once.
func schemaFor(t reflect.Type) (*schema, error) {
	if s, ok := schemas.Load(t); ok {
		return s.(*schema), nil
	}
	s, err := compile(t, map[reflect.Type]*schema{})
	if err != nil {
		return nil, err
	}
	schemas.Store(t, s)
	return s, nil
}

// compile builds the schema of t. inProgress holds the structs being
// compiled, so a recursive type refers to itself instead of looping.
func compile(t reflect.Type, inProgress map[reflect.Type]*schema) (*schema, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawType {
		return &schema{kind: kindRaw}, nil
	}
	if t == numType {
		return nil, fmt.Errorf("%w: json.Number", ErrUnsupportedType)
	}
	if t.Implements(shapedType) && (t.Implements(unmarshal) || reflect.PointerTo(t).Implements(unmarshal)) {
		return compileShapes(t, reflect.Zero(t).Interface().(Shaped).JSONShapes(), inProgress)
	}
	if t.Implements(unmarshal) || reflect.PointerTo(t).Implements(unmarshal) {
		return nil, fmt.Errorf("%w: %s has its own UnmarshalJSON, whose rules Decode cannot check", ErrUnsupportedType, t)
	}
	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return nil, fmt.Errorf("%w: interface %s", ErrUnsupportedType, t)
		}
		return anySchema, nil
	case reflect.String:
		return &schema{kind: kindString}, nil
	case reflect.Bool:
		return &schema{kind: kindBool}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &schema{kind: kindInt, bits: t.Bits()}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &schema{kind: kindUint, bits: t.Bits()}, nil
	case reflect.Float32, reflect.Float64:
		return &schema{kind: kindFloat, bits: t.Bits()}, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil, fmt.Errorf("%w: %s (encoding/json reads it as base64)", ErrUnsupportedType, t)
		}
		elem, err := compile(t.Elem(), inProgress)
		if err != nil {
			return nil, err
		}
		return &schema{kind: kindSlice, elem: elem}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%w: %s (map keys must be strings)", ErrUnsupportedType, t)
		}
		elem, err := compile(t.Elem(), inProgress)
		if err != nil {
			return nil, err
		}
		return &schema{kind: kindMap, elem: elem}, nil
	case reflect.Struct:
		if s, ok := inProgress[t]; ok {
			return s, nil
		}
		s := &schema{kind: kindStruct, fields: map[string]*schema{}}
		inProgress[t] = s
		if err := addFields(s, t, inProgress); err != nil {
			return nil, err
		}
		s.allowed = strings.Join(slices.Sorted(maps.Keys(s.fields)), ", ")
		return s, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedType, t)
}

// addFields adds the JSON fields of struct t to s, promoting the fields of
// untagged embedded structs as encoding/json does. A name given twice is
// refused rather than resolved by encoding/json's depth rules.
func addFields(s *schema, t reflect.Type, inProgress map[reflect.Type]*schema) error {
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "string") {
			return fmt.Errorf("%w: %s.%s has the ,string option", ErrUnsupportedType, t, f.Name)
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			if err := addFields(s, ft, inProgress); err != nil {
				return err
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := s.fields[name]; dup {
			return fmt.Errorf("%w: %s has two fields named %q", ErrUnsupportedType, t, name)
		}
		fs, err := compile(f.Type, inProgress)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", t, f.Name, err)
		}
		s.fields[name] = fs
	}
	return nil
}
