package objscope

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsedEndpointOnce(t *testing.T) {
	t.Parallel()
	first, err := parsedEndpoint("https://minio.test:9000/base")
	require.NoError(t, err)
	again, err := parsedEndpoint("https://minio.test:9000/base")
	require.NoError(t, err)
	assert.Same(t, first, again, "the endpoint is parsed once")
	assert.Equal(t, "minio.test", again.Hostname())
	assert.Equal(t, "/base", again.EscapedPath())

	_, err = parsedEndpoint("https://bad host/")
	require.Error(t, err)
	_, kept := endpoints.Load("https://bad host/")
	assert.False(t, kept, "an endpoint that does not parse is not kept")
}
