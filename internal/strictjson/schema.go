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
)

// schema is the compiled form of a Go type: what Decode checks a JSON value
// against. Pointers are transparent (null is accepted everywhere).
type schema struct {
	kind    kind
	bits    int
	elem    *schema            // kindMap, kindSlice
	fields  map[string]*schema // kindStruct: JSON name → field
	allowed string             // kindStruct: the field names, sorted, for error details
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
