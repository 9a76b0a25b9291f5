// Package validation carries field-level validation failures from the domain
// packages to the API edge, where they become RFC 9457 problem details that
// name every offending field. Keeping the type here lets the encode spec,
// the store and the handlers agree on one shape without importing each other.
package validation

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError says what is wrong with one field. Field is a JSON path such as
// "renditions[1].height" so a client can point at the exact input.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Errors is a list of field errors; it is an error itself so validators can
// return it directly and callers can detect it with errors.As.
type Errors []FieldError

// Error joins the field errors into one line for logs.
func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fe.Field + ": " + fe.Detail
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Add appends a field error with a formatted detail.
func (e *Errors) Add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

// Prefixed returns the errors with prefix prepended to every field path, for
// nesting one validator's result inside a larger document.
func (e Errors) Prefixed(prefix string) Errors {
	out := make(Errors, len(e))
	for i, fe := range e {
		switch {
		case fe.Field == "":
			fe.Field = prefix
		case strings.HasPrefix(fe.Field, "["):
			fe.Field = prefix + fe.Field
		default:
			fe.Field = prefix + "." + fe.Field
		}
		out[i] = fe
	}
	return out
}

// Err returns nil when there are no errors, so `return errs.Err()` reads well.
func (e Errors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

// As extracts field errors from err, if it carries any.
func As(err error) (Errors, bool) {
	var ve Errors
	if errors.As(err, &ve) {
		return ve, true
	}
	return nil, false
}
