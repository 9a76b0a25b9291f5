package apiv1

import (
	"fmt"
	"strings"
)

// ProblemTypePrefix starts every Problem.Type; the rest is a stable slug
// (validation, not-found, conflict, rate-limited, ...).
const ProblemTypePrefix = "urn:mpegflow:problem:"

// Problem is an RFC 9457 problem+json answer: every refusal of the API.
type Problem struct {
	// Type is ProblemTypePrefix plus a stable slug; switch on it, not on
	// Title or Detail.
	Type string `json:"type"`
	// Title is the HTTP status text.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail says, for a human, what went wrong and what to do.
	Detail string `json:"detail,omitempty"`
	// Instance is the request path.
	Instance string `json:"instance,omitempty"`
	// RequestID is the id of the failed request, also in the X-Request-Id
	// response header and in every log line of the request: quote it when
	// reporting a problem.
	RequestID string `json:"request_id,omitempty"`
	// Errors name the offending fields of a validation problem.
	Errors FieldErrors `json:"errors,omitempty"`
}

// Error makes a problem an error, so servers return it and clients match
// it with errors.As.
func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// FieldError says what is wrong with one field. Field is a JSON path such as
// "renditions[1].height" so a client can point at the exact input.
type FieldError struct {
	// Field is the JSON path of the offending value.
	Field string `json:"field"`
	// Detail says what the value must be.
	Detail string `json:"detail"`
}

// FieldErrors is a list of field errors; it is an error itself so
// validators can return it directly and callers can detect it with
// errors.As.
type FieldErrors []FieldError

// Error joins the field errors into one line for logs.
func (e FieldErrors) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fe.Field + ": " + fe.Detail
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Add appends a field error with a formatted detail.
func (e *FieldErrors) Add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

// Prefixed returns the errors with prefix prepended to every field path, for
// nesting one validator's result inside a larger document.
func (e FieldErrors) Prefixed(prefix string) FieldErrors {
	out := make(FieldErrors, len(e))
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
func (e FieldErrors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}
