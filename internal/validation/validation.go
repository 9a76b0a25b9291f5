// Package validation carries field-level validation failures from the domain
// packages to the API edge, where they become RFC 9457 problem details that
// name every offending field. Keeping the type here lets the encode spec,
// the store and the handlers agree on one shape without importing each other.
package validation

import (
	"errors"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// FieldError says what is wrong with one field. Field is a JSON path such as
// "renditions[1].height" so a client can point at the exact input. It is
// the API contract's type: problem details carry it as is.
type FieldError = apiv1.FieldError

// Errors is a list of field errors; it is an error itself so validators can
// return it directly and callers can detect it with errors.As. It is the
// contract's apiv1.FieldErrors, so validation written in api/v1 (such as
// PoolSettings.Validate) and in the domain packages is one type.
type Errors = apiv1.FieldErrors

// As extracts field errors from err, if it carries any.
func As(err error) (Errors, bool) {
	var ve Errors
	if errors.As(err, &ve) {
		return ve, true
	}
	return nil, false
}
