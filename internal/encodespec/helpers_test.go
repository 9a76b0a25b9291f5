package encodespec

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// fieldErrors asserts err carries validation errors and returns them.
func fieldErrors(t *testing.T, err error) validation.Errors {
	t.Helper()
	require.Error(t, err)
	errs, ok := validation.As(err)
	require.Truef(t, ok, "want validation.Errors, got %T: %v", err, err)
	return errs
}

// fields lists the field paths of errs in order.
func fields(errs validation.Errors) []string {
	out := make([]string, len(errs))
	for i, fe := range errs {
		out[i] = fe.Field
	}
	return out
}

// detail returns the detail of the first error on field, failing if none.
func detail(t *testing.T, errs validation.Errors, field string) string {
	t.Helper()
	for _, fe := range errs {
		if fe.Field == field {
			return fe.Detail
		}
	}
	require.Failf(t, "no error for field", "field %q not in %v", field, fields(errs))
	return ""
}
