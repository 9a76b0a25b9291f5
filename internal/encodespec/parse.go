package encodespec

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/mpegflow/mpegflow/internal/strictjson"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// Parse decodes raw strictly, fills defaults and validates the result.
//
// encoding/json alone accepts unknown fields silently, matches keys
// case-insensitively, keeps the last of duplicate keys, replaces invalid
// UTF-8 and lone surrogates with U+FFFD and reports type errors without
// array indices; any of those would let a typo such as "bitrate" for
// "bitrate_kbps" pass unnoticed. Parse therefore decodes with
// internal/strictjson, which reports every unknown field, duplicate field,
// wrong type, text that is no text and trailing data as a validation.Errors
// whose field paths name the input ("renditions[0].height"). Only a
// document that has the right shape is decoded, normalized and validated.
// Errors at the document root (empty body, not an object) carry the field
// "".
//
// Parse does not limit the input size; the HTTP layer bounds request bodies.
func Parse(raw []byte) (Spec, error) {
	var errs validation.Errors
	switch trimmed := bytes.TrimSpace(raw); {
	case len(trimmed) == 0:
		errs.Add("", "empty body: expected a JSON object describing the encode spec")
		return Spec{}, errs
	case string(trimmed) == "null":
		errs.Add("", "expected a JSON object describing the encode spec, got null")
		return Spec{}, errs
	}
	var s Spec
	err := strictjson.Decode(raw, &s)
	var syn *strictjson.SyntaxError
	switch {
	case errors.As(err, &syn):
		errs.Add(syn.Path, "%s", syn.Error())
		return Spec{}, errs
	case err != nil:
		if ve, ok := validation.As(err); ok {
			return Spec{}, ve
		}
		return Spec{}, fmt.Errorf("decode encode spec: %w", err)
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}
