package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestSkaffoldConfig validates skaffold.yaml against skaffold's own JSON
// schema for v4beta14, read from the shared folder (never copied here), and
// checks the pieces the dev loop relies on.
func TestSkaffoldConfig(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../skaffold.yaml")
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(raw)
	require.NoError(t, err, "skaffold.yaml parses")
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	require.NoError(t, err)

	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(readShared(t, "schemas/skaffold-v4beta14.json")))
	require.NoError(t, err, "skaffold schema parses")
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("skaffold-v4beta14.json", schemaDoc))
	sch, err := c.Compile("skaffold-v4beta14.json")
	require.NoError(t, err, "skaffold schema compiles")
	require.NoError(t, sch.Validate(doc), "skaffold.yaml against the v4beta14 schema")

	// The schema catches a typo: a sanity check that validation bites.
	var typo map[string]any
	require.NoError(t, json.Unmarshal(js, &typo))
	typo["deploy"].(map[string]any)["helm"].(map[string]any)["releses"] = []any{}
	require.Error(t, sch.Validate(typo), "the schema rejects an unknown field")

	var cfg struct {
		APIVersion string `json:"apiVersion"`
		Build      struct {
			Artifacts []struct {
				Image  string `json:"image"`
				Docker struct {
					Dockerfile string `json:"dockerfile"`
				} `json:"docker"`
			} `json:"artifacts"`
		} `json:"build"`
		Deploy struct {
			Helm struct {
				Releases []struct {
					ChartPath string `json:"chartPath"`
				} `json:"releases"`
			} `json:"helm"`
		} `json:"deploy"`
		Profiles []struct {
			Name        string `json:"name"`
			PortForward []struct {
				Port      int `json:"port"`
				LocalPort int `json:"localPort"`
			} `json:"portForward"`
		} `json:"profiles"`
	}
	require.NoError(t, json.Unmarshal(js, &cfg))
	require.Equal(t, "skaffold/v4beta14", cfg.APIVersion)
	images := map[string]string{}
	for _, a := range cfg.Build.Artifacts {
		images[a.Image] = a.Docker.Dockerfile
		_, err := os.Stat("../" + a.Docker.Dockerfile)
		require.NoError(t, err, "artifact %s's Dockerfile exists", a.Image)
	}
	require.Equal(t, map[string]string{"mpegflow": "Dockerfile", "mpegflow-encoder": "encoder-image/Dockerfile"}, images)
	require.Len(t, cfg.Deploy.Helm.Releases, 1)
	require.Equal(t, "charts/mpegflow", cfg.Deploy.Helm.Releases[0].ChartPath)
	profiles := map[string][]int{}
	for _, p := range cfg.Profiles {
		profiles[p.Name] = nil
		for _, pf := range p.PortForward {
			require.Equal(t, pf.Port, pf.LocalPort)
			profiles[p.Name] = append(profiles[p.Name], pf.Port)
		}
	}
	require.Equal(t, map[string][]int{"dev": {8080, 9090}, "gpu": nil}, profiles)
}
