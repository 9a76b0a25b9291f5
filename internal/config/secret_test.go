package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/config"
)

func TestServerSecretLength(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		secret string
		ok     bool
	}{
		"missing":   {"", false},
		"too short": {"0123456789", false},
		"32 bytes":  {"0123456789abcdef0123456789abcdef", true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Load(func(n string) string {
				if n == "MPEGFLOW_SERVER_SECRET" {
					return tc.secret
				}
				return ""
			})
			require.NoError(t, err)
			err = c.Require("MPEGFLOW_SERVER_SECRET")
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, "MPEGFLOW_SERVER_SECRET")
			}
		})
	}
}
