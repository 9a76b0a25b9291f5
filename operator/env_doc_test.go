package operator

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDesignNoteListsEveryVariable keeps the operator's configuration table
// (docs/design/0003-operator.md) in step with EnvVars.
func TestDesignNoteListsEveryVariable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docs/design/0003-operator.md")
	require.NoError(t, err)
	note := string(b)
	for _, v := range EnvVars {
		assert.True(t, strings.Contains(note, "| `"+v.Name+"` |"), "%s is missing from the table in docs/design/0003-operator.md", v.Name)
	}
}
