// Package strictjson decodes JSON documents that people and programs send
// to MpegFlow, refusing what encoding/json would silently accept or change:
//
//   - text that is no text: invalid UTF-8 (encoding/json replaces it with
//     U+FFFD), lone UTF-16 surrogates such as \ud800 (likewise replaced),
//     the NUL character, raw or written \u0000 (Postgres stores neither in
//     text nor in jsonb), and unescaped control characters;
//   - an object key given twice, at any depth (encoding/json keeps the
//     last, so two readers of one document could disagree);
//   - fields the target struct does not have, matched exactly (encoding/json
//     matches them case-insensitively), and values of the wrong type;
//   - nesting deeper than MaxDepth, and data after the value.
//
// Every problem is named by the path of the value it concerns
// ("renditions[2].name", "metadata.title"; "" is the document itself), in
// document order, so an API can answer with field errors a client can act
// on. Only a document without problems reaches encoding/json, which then
// decodes it exactly as it would have.
package strictjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// Limits of a document.
const (
	// MaxDepth is how deeply arrays and objects may nest. Requests nest a
	// few levels; the bound keeps the recursive check's stack small.
	MaxDepth = 100
	// MaxErrors is how many problems one Decode reports before it stops
	// reading: enough to fix a request, not enough to amplify a hostile one.
	MaxErrors = 100
)

// SyntaxError means the input is not one well-formed JSON value. Path names
// the value being read when the problem was found.
type SyntaxError struct {
	Offset int64  // byte offset of the problem
	Path   string // "" is the document itself
	Msg    string // what is wrong, in words
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("malformed JSON at byte %d: %s", e.Offset, e.Msg)
}

// Decode decodes the one JSON value in raw into v, a non-nil pointer, after
// checking raw against v's type. It returns a *SyntaxError when raw is not
// well-formed JSON, validation.Errors naming every problem it found
// otherwise (at most MaxErrors), and an error wrapping ErrUnsupportedType
// when v's type holds something Decode has no rule for. v is left alone
// unless the check passes. null is accepted for any value and means
// "absent", as in encoding/json.
func Decode(raw []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: Decode needs a non-nil pointer, got %T", ErrUnsupportedType, v)
	}
	s, err := schemaFor(rv.Type().Elem())
	if err != nil {
		return err
	}
	if err := check(raw, s); err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		// check accepted the document, so this is a bug in check.
		return fmt.Errorf("strictjson: encoding/json refused a document the check accepted: %w", err)
	}
	return nil
}

// Valid checks raw as Decode does for a target of type any: well-formed
// JSON, text that is text, no key given twice, numbers within float64.
func Valid(raw []byte) error { return check(raw, anySchema) }

// check checks raw against s: Decode without the decoding.
func check(raw []byte, s *schema) error {
	d := &decoder{data: raw}
	err := d.value(s, "")
	if err == nil {
		d.space()
		if d.off < len(d.data) {
			err = d.syntax("", "unexpected data after the JSON %s", d.rootKind)
		}
	}
	var se *SyntaxError
	switch {
	case errors.As(err, &se):
		return se
	case err != nil && !errors.Is(err, errStop):
		return err
	}
	return d.errs.Err()
}

// errStop ends the walk early: MaxErrors problems are known, or the
// document nests too deeply to read on.
var errStop = errors.New("stop reading")

// decoder walks a JSON document once, checking each value against its
// schema. Syntax errors end the walk; every other problem is recorded and
// the walk goes on, so one answer lists them all.
type decoder struct {
	data     []byte
	off      int
	depth    int
	errs     validation.Errors
	rootKind string
}

func (d *decoder) add(path, format string, args ...any) error {
	d.errs.Add(path, format, args...)
	if len(d.errs) >= MaxErrors {
		return errStop
	}
	return nil
}

func (d *decoder) syntax(path, format string, args ...any) error {
	return &SyntaxError{Offset: int64(d.off), Path: path, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) space() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

// found names the byte at the current offset for a syntax error.
func (d *decoder) found() string {
	if d.off >= len(d.data) {
		return "the end of the document"
	}
	c := d.data[d.off]
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// value checks the value at the current offset against s.
func (d *decoder) value(s *schema, path string) error {
	d.space()
	if d.off >= len(d.data) {
		if path == "" && d.rootKind == "" {
			return d.syntax(path, "the document is empty")
		}
		return d.syntax(path, "the document ends early")
	}
	if s.kind == kindOneOf {
		if alt, ok := s.alts[class(d.data[d.off])]; ok {
			s = alt
		}
	}
	switch c := d.data[d.off]; {
	case c == '{':
		d.note("object")
		if s.kind != kindStruct && s.kind != kindMap && s.kind != kindAny && s.kind != kindRaw {
			if err := d.mismatch(s, path, "an object"); err != nil {
				return err
			}
			s = anySchema
		}
		return d.object(s, path)
	case c == '[':
		d.note("array")
		if s.kind != kindSlice && s.kind != kindAny && s.kind != kindRaw {
			if err := d.mismatch(s, path, "an array"); err != nil {
				return err
			}
			s = anySchema
		}
		return d.array(s, path)
	case c == '"':
		d.note("string")
		str, problem, err := d.str(path)
		if err != nil {
			return err
		}
		if problem != "" {
			if err := d.add(path, "%s", problem); err != nil {
				return err
			}
		}
		switch s.kind {
		case kindString, kindAny, kindRaw:
			return nil
		}
		return d.mismatch(s, path, "the string "+quote(str))
	case c == '-' || (c >= '0' && c <= '9'):
		d.note("number")
		num, err := d.number(path)
		if err != nil {
			return err
		}
		return d.checkNumber(s, path, num)
	case c == 't' || c == 'f' || c == 'n':
		lit, err := d.literal(path)
		if err != nil {
			return err
		}
		d.note(lit)
		switch {
		case lit == "null", s.kind == kindBool, s.kind == kindAny, s.kind == kindRaw:
			return nil
		}
		return d.mismatch(s, path, "a boolean")
	}
	return d.syntax(path, "expected a value, found %s", d.found())
}

// note records the kind of the document's top-level value, for the
// trailing-data error.
func (d *decoder) note(kind string) {
	if d.rootKind == "" {
		d.rootKind = kind
	}
}

// mismatch records that the value at path is got where s wants another
// type. At the document's root the detail says what was expected.
func (d *decoder) mismatch(s *schema, path, got string) error {
	if s.kind == kindOneOf {
		return d.add(path, "must be %s, got %s", s.noun, got)
	}
	if path == "" {
		return d.add(path, "expected %s, got %s", rootNouns[s.kind], got)
	}
	return d.add(path, "must be %s, got %s", nouns[s.kind], got)
}

// What each kind of schema accepts, for error details.
var (
	nouns = map[kind]string{
		kindString: "a string", kindBool: "true or false", kindInt: "a whole number", kindUint: "a whole number",
		kindFloat: "a number", kindStruct: "an object", kindMap: "an object", kindSlice: "an array",
	}
	rootNouns = map[kind]string{
		kindString: "a JSON string", kindBool: "true or false", kindInt: "a whole number", kindUint: "a whole number",
		kindFloat: "a JSON number", kindStruct: "a JSON object", kindMap: "a JSON object", kindSlice: "a JSON array",
	}
)

// enter counts one more level of nesting; past MaxDepth the walk stops
// with a field error, since the document may well be valid JSON.
func (d *decoder) enter(path string) error {
	d.depth++
	if d.depth > MaxDepth {
		d.errs.Add(path, "arrays and objects nest more than %d levels deep here", MaxDepth)
		return errStop
	}
	return nil
}

// object checks the object at the current offset: each key once, each
// member against its field (struct), the element schema (map) or anything.
func (d *decoder) object(s *schema, path string) error {
	if err := d.enter(path); err != nil {
		return err
	}
	defer func() { d.depth-- }()
	d.off++ // '{'
	d.space()
	if d.off < len(d.data) && d.data[d.off] == '}' {
		d.off++
		return nil
	}
	seen := map[string]bool{}
	for {
		d.space()
		if d.off >= len(d.data) {
			return d.syntax(path, "the document ends early")
		}
		if d.data[d.off] != '"' {
			return d.syntax(path, "expected a string key, found %s", d.found())
		}
		key, problem, err := d.str(path)
		if err != nil {
			return err
		}
		member := join(path, key)
		if problem != "" {
			if err := d.add(member, "the key %s", problem); err != nil {
				return err
			}
		}
		d.space()
		if d.off >= len(d.data) || d.data[d.off] != ':' {
			return d.syntax(member, "expected ':' after the key, found %s", d.found())
		}
		d.off++
		child := anySchema
		switch {
		case seen[key]:
			err = d.add(member, "is given more than once; give it once")
		case s.kind == kindStruct:
			if f, ok := s.fields[key]; ok {
				child = f
			} else {
				err = d.add(member, "unknown field; allowed fields here: %s", s.allowed)
			}
		case s.kind == kindMap:
			child = s.elem
		case s.kind == kindRaw:
			child = s
		}
		if err != nil {
			return err
		}
		seen[key] = true
		if err := d.value(child, member); err != nil {
			return err
		}
		d.space()
		if d.off >= len(d.data) {
			return d.syntax(path, "the document ends early")
		}
		switch d.data[d.off] {
		case ',':
			d.off++
		case '}':
			d.off++
			return nil
		default:
			return d.syntax(path, "expected ',' or '}' after a member, found %s", d.found())
		}
	}
}

// array checks the array at the current offset, each element against the
// element schema (slice) or anything.
func (d *decoder) array(s *schema, path string) error {
	if err := d.enter(path); err != nil {
		return err
	}
	defer func() { d.depth-- }()
	d.off++ // '['
	d.space()
	if d.off < len(d.data) && d.data[d.off] == ']' {
		d.off++
		return nil
	}
	elem := anySchema
	switch s.kind {
	case kindSlice:
		elem = s.elem
	case kindRaw:
		elem = s
	}
	for i := 0; ; i++ {
		if err := d.value(elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
		d.space()
		if d.off >= len(d.data) {
			return d.syntax(path, "the document ends early")
		}
		switch d.data[d.off] {
		case ',':
			d.off++
		case ']':
			d.off++
			return nil
		default:
			return d.syntax(path, "expected ',' or ']' after an element, found %s", d.found())
		}
	}
}

// literal reads true, false or null.
func (d *decoder) literal(path string) (string, error) {
	for _, lit := range []string{"true", "false", "null"} {
		if strings.HasPrefix(string(d.data[d.off:min(len(d.data), d.off+len(lit))]), lit) {
			d.off += len(lit)
			return lit, nil
		}
	}
	return "", d.syntax(path, "expected a value, found %s", d.found())
}

// number reads a number as RFC 8259 writes it and returns its text.
func (d *decoder) number(path string) (string, error) {
	start := d.off
	digits := func() int {
		n := 0
		for d.off < len(d.data) && d.data[d.off] >= '0' && d.data[d.off] <= '9' {
			d.off++
			n++
		}
		return n
	}
	if d.data[d.off] == '-' {
		d.off++
	}
	switch {
	case d.off < len(d.data) && d.data[d.off] == '0':
		d.off++
	case digits() == 0:
		return "", d.syntax(path, "expected a digit in the number, found %s", d.found())
	}
	if d.off < len(d.data) && d.data[d.off] == '.' {
		d.off++
		if digits() == 0 {
			return "", d.syntax(path, "expected a digit after the decimal point, found %s", d.found())
		}
	}
	if d.off < len(d.data) && (d.data[d.off] == 'e' || d.data[d.off] == 'E') {
		d.off++
		if d.off < len(d.data) && (d.data[d.off] == '+' || d.data[d.off] == '-') {
			d.off++
		}
		if digits() == 0 {
			return "", d.syntax(path, "expected a digit in the exponent, found %s", d.found())
		}
	}
	return string(d.data[start:d.off]), nil
}

// checkNumber checks a number against s: whole and in range for integers,
// in range for floats.
func (d *decoder) checkNumber(s *schema, path, num string) error {
	switch s.kind {
	case kindRaw:
		return nil
	case kindAny, kindFloat:
		bits := 64
		if s.kind == kindFloat {
			bits = s.bits
		}
		if _, err := strconv.ParseFloat(num, bits); err != nil {
			return d.add(path, "number %s is out of range", num)
		}
		return nil
	case kindInt, kindUint:
		lo, hi := "0", strconv.FormatUint(1<<s.bits-1, 10)
		if s.kind == kindInt {
			lo, hi = strconv.FormatInt(-1<<(s.bits-1), 10), strconv.FormatInt(1<<(s.bits-1)-1, 10)
		}
		if strings.ContainsAny(num, ".eE") {
			return d.add(path, "must be a whole number without fraction or exponent, got %s", num)
		}
		var err error
		if s.kind == kindInt {
			_, err = strconv.ParseInt(num, 10, s.bits)
		} else {
			_, err = strconv.ParseUint(num, 10, s.bits)
		}
		if err != nil {
			return d.add(path, "must be a whole number from %s to %s, got %s", lo, hi, num)
		}
		return nil
	}
	return d.mismatch(s, path, "the number "+num)
}

// str reads the string at the current offset and returns its value and,
// when the string holds text that is no text, what is wrong with it (the
// first problem; the value then has U+FFFD in place of the bad part).
// Malformed escapes and an unterminated string are syntax errors.
func (d *decoder) str(path string) (string, string, error) {
	d.off++ // opening quote
	var b strings.Builder
	problem := ""
	bad := func(format string, args ...any) {
		if problem == "" {
			problem = fmt.Sprintf(format, args...)
		}
		b.WriteRune(utf8.RuneError)
	}
	for {
		if d.off >= len(d.data) {
			return "", "", d.syntax(path, "the document ends inside a string")
		}
		c := d.data[d.off]
		switch {
		case c == '"':
			d.off++
			return b.String(), problem, nil
		case c == '\\':
			if d.off+1 >= len(d.data) {
				d.off++
				return "", "", d.syntax(path, "the document ends inside a string")
			}
			esc := d.data[d.off+1]
			if esc == 'u' {
				r, err := d.hex4(path, d.off+2)
				if err != nil {
					return "", "", err
				}
				d.off += 6
				switch {
				case r == 0:
					bad("contains the NUL character (written \\u0000), which cannot be stored")
				case r >= 0xd800 && r < 0xdc00:
					lo := rune(-1)
					if d.off+1 < len(d.data) && d.data[d.off] == '\\' && d.data[d.off+1] == 'u' {
						if lo, err = d.hex4(path, d.off+2); err != nil {
							return "", "", err
						}
					}
					if lo < 0xdc00 || lo >= 0xe000 {
						bad("contains \\u%04x, half of a UTF-16 surrogate pair without its other half, which is no character", r)
						continue
					}
					d.off += 6
					b.WriteRune(utf16.DecodeRune(r, lo))
				case r >= 0xdc00 && r < 0xe000:
					bad("contains \\u%04x, half of a UTF-16 surrogate pair without its other half, which is no character", r)
				default:
					b.WriteRune(r)
				}
				continue
			}
			out, ok := unescape(esc)
			if !ok {
				d.off++
				return "", "", d.syntax(path, "invalid escape '\\%c' in a string", esc)
			}
			b.WriteByte(out)
			d.off += 2
		case c < 0x20:
			if c == 0 {
				bad("contains the NUL character (U+0000), which cannot be stored")
			} else {
				bad("contains the control character U+%04X unescaped; JSON strings must write it as \\u%04x", c, c)
			}
			d.off++
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			d.off++
		default:
			r, size := utf8.DecodeRune(d.data[d.off:])
			if r == utf8.RuneError && size == 1 {
				bad("is not valid UTF-8 (byte 0x%02x at offset %d)", c, d.off)
				d.off++
				continue
			}
			b.WriteRune(r)
			d.off += size
		}
	}
}

// unescape returns the byte a one-character escape such as \n stands for.
func unescape(esc byte) (byte, bool) {
	switch esc {
	case '"', '\\', '/':
		return esc, true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	}
	return 0, false
}

// hex4 reads the four hex digits of a \u escape starting at i.
func (d *decoder) hex4(path string, i int) (rune, error) {
	if i+4 > len(d.data) {
		d.off = len(d.data)
		return 0, d.syntax(path, "the document ends inside a \\u escape")
	}
	n, err := strconv.ParseUint(string(d.data[i:i+4]), 16, 16)
	if err != nil {
		d.off = i
		return 0, d.syntax(path, "a \\u escape needs four hex digits, found %q", d.data[i:i+4])
	}
	return rune(n), nil
}

// join appends an object key to a path. Characters that would make the path
// itself unprintable (control characters, invalid UTF-8) show as U+FFFD.
func join(path, key string) string {
	key = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return utf8.RuneError
		}
		return r
	}, key)
	if path == "" {
		return key
	}
	return path + "." + key
}

// quote quotes a string for an error detail, shortened to 40 characters.
func quote(s string) string {
	if r := []rune(s); len(r) > 40 {
		s = string(r[:40]) + "…"
	}
	return strconv.Quote(s)
}
