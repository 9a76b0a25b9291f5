package chart_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestServerDockerfile checks the mpegflow image's promises without a Docker
// engine: a static (CGO-free) binary on a distroless or scratch base, run as
// a non-root user, building the one binary of every role.
func TestServerDockerfile(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	text := string(raw)
	froms := regexp.MustCompile(`(?m)^FROM\s+(?:--platform=\S+\s+)?(\S+)`).FindAllStringSubmatch(text, -1)
	require.NotEmpty(t, froms)
	final := froms[len(froms)-1][1]
	require.True(t, strings.HasPrefix(final, "gcr.io/distroless/static") || final == "scratch", "final base %s is distroless static or scratch", final)
	require.Contains(t, text, "CGO_ENABLED=0")
	require.Contains(t, text, "./cmd/mpegflow")
	_, lastStage, _ := strings.Cut(text, froms[len(froms)-1][0])
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(lastStage)
	require.NotNil(t, user, "the final stage sets USER")
	uid, _, _ := strings.Cut(user[1], ":")
	require.NotContains(t, []string{"0", "root"}, uid, "the image runs as non-root")

	// The chart's pods run as the same uid the image declares.
	r := mustRender(t, nil)
	spec := podSpecs(r)["Deployment/mf-mpegflow"]
	require.Equal(t, uid, fmt.Sprint(get(spec, "securityContext", "runAsUser")), "chart runAsUser")
}
