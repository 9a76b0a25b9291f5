// Package deploy holds the test of skaffold.yaml, the dev loop at the
// repository's root, and, under the images build tag, the test that runs the
// built images (make test-images). It has no code of its own. The chart's
// tests, and the Dockerfile's (whose user the chart's pods must match), live
// beside the chart in charts/mpegflow.
package deploy

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// skaffoldConfig is the part of skaffold's v4beta14 schema that
// skaffold.yaml uses, decoded strictly: a field skaffold does not know (a
// typo of "releases", say) or one this project never meant to set fails the
// test. The skaffold module is not served by the module proxy, so its own
// types cannot be imported; these follow its documented v4beta14 fields.
type skaffoldConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Build    skaffoldBuild     `json:"build"`
	Deploy   skaffoldDeploy    `json:"deploy"`
	Profiles []skaffoldProfile `json:"profiles"`
}

type skaffoldBuild struct {
	TagPolicy struct {
		GitCommit *struct {
			Variant string `json:"variant"`
		} `json:"gitCommit"`
	} `json:"tagPolicy"`
	Local struct {
		UseBuildkit *bool `json:"useBuildkit"`
		Concurrency *int  `json:"concurrency"`
	} `json:"local"`
	Artifacts []struct {
		Image   string `json:"image"`
		Context string `json:"context"`
		Docker  struct {
			Dockerfile string `json:"dockerfile"`
		} `json:"docker"`
	} `json:"artifacts"`
}

type skaffoldDeploy struct {
	Helm struct {
		Releases []struct {
			Name              string            `json:"name"`
			ChartPath         string            `json:"chartPath"`
			Namespace         string            `json:"namespace"`
			CreateNamespace   *bool             `json:"createNamespace"`
			Wait              *bool             `json:"wait"`
			SetValueTemplates map[string]string `json:"setValueTemplates"`
			SetValues         map[string]any    `json:"setValues"`
		} `json:"releases"`
	} `json:"helm"`
}

type skaffoldProfile struct {
	Name       string `json:"name"`
	Activation []struct {
		Command string `json:"command"`
	} `json:"activation"`
	Patches []struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	} `json:"patches"`
	PortForward []struct {
		ResourceType string `json:"resourceType"`
		ResourceName string `json:"resourceName"`
		Namespace    string `json:"namespace"`
		Port         int    `json:"port"`
		LocalPort    int    `json:"localPort"`
	} `json:"portForward"`
}

// decodeSkaffold decodes a skaffold config strictly: unknown fields,
// duplicate keys and wrong types are errors.
func decodeSkaffold(raw []byte) (skaffoldConfig, error) {
	var cfg skaffoldConfig
	err := yaml.UnmarshalStrict(raw, &cfg)
	return cfg, err
}

// TestSkaffoldConfig decodes skaffold.yaml with the strict decoder above
// and checks the pieces the dev loop relies on.
func TestSkaffoldConfig(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../skaffold.yaml")
	require.NoError(t, err)
	cfg, err := decodeSkaffold(raw)
	require.NoError(t, err, "skaffold.yaml decodes strictly")

	// The decoder bites: a typo and a field of the wrong type are refused.
	const typo = "releses" //nolint:misspell // the deliberate typo of "releases" the strict decoder must refuse
	_, err = decodeSkaffold([]byte(strings.Replace(string(raw), "releases:", typo+":", 1)))
	require.ErrorContains(t, err, typo, "an unknown field is refused")
	_, err = decodeSkaffold([]byte(strings.Replace(string(raw), "port: 8080", "port: eighty", 1)))
	require.Error(t, err, "a field of the wrong type is refused")

	require.Equal(t, "skaffold/v4beta14", cfg.APIVersion)
	require.Equal(t, "Config", cfg.Kind)
	require.NotNil(t, cfg.Build.TagPolicy.GitCommit)
	require.Contains(t, []string{"Tags", "CommitSha", "AbbrevCommitSha", "TreeSha", "AbbrevTreeSha"}, cfg.Build.TagPolicy.GitCommit.Variant)
	images := map[string]string{}
	for _, a := range cfg.Build.Artifacts {
		images[a.Image] = a.Docker.Dockerfile
		_, err := os.Stat("../" + a.Docker.Dockerfile)
		require.NoError(t, err, "artifact %s's Dockerfile exists", a.Image)
	}
	require.Equal(t, map[string]string{"mpegflow": "Dockerfile", "mpegflow-encoder": "encoder-image/Dockerfile"}, images)
	require.Len(t, cfg.Deploy.Helm.Releases, 1)
	rel := cfg.Deploy.Helm.Releases[0]
	require.Equal(t, "charts/mpegflow", rel.ChartPath)
	for key, tmpl := range rel.SetValueTemplates {
		require.Regexp(t, `^\{\{\.IMAGE_(REPO|TAG)_mpegflow(_encoder)?\}\}$`, tmpl, "value template of %s", key)
	}
	profiles := map[string][]int{}
	for _, p := range cfg.Profiles {
		profiles[p.Name] = nil
		for _, a := range p.Activation {
			require.Contains(t, []string{"dev", "run", "debug", "build", "deploy", "render"}, a.Command)
		}
		for _, patch := range p.Patches {
			require.Contains(t, []string{"add", "remove", "replace", "move", "copy", "test"}, patch.Op)
			require.True(t, strings.HasPrefix(patch.Path, "/deploy/helm/releases/0/"), "patch path %s points into the one release", patch.Path)
		}
		for _, pf := range p.PortForward {
			require.Equal(t, "service", pf.ResourceType)
			require.Equal(t, pf.Port, pf.LocalPort)
			profiles[p.Name] = append(profiles[p.Name], pf.Port)
		}
	}
	require.Equal(t, map[string][]int{"dev": {8080, 9090}, "gpu": nil}, profiles)
}
