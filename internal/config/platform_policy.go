package config

import (
	"bytes"
	"encoding/json"
	"fmt"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// parsePlatformPolicy reads MPEGFLOW_PLATFORM_POLICY: the policy `serve`
// seeds into Postgres when none is stored (the chart renders its
// platformPolicy value into it). Empty means apiv1.DefaultPlatformPolicy.
// Unknown fields are refused, so a misspelt rule fails the start instead of
// silently allowing nothing (or everything).
func parsePlatformPolicy(s string) (apiv1.PlatformPolicy, error) {
	if s == "" {
		return apiv1.DefaultPlatformPolicy(), nil
	}
	var p apiv1.PlatformPolicy
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return apiv1.PlatformPolicy{}, fmt.Errorf("MPEGFLOW_PLATFORM_POLICY: want the JSON of a platform policy (docs/design/0018-platform-policy.md): %w", err)
	}
	if dec.More() {
		return apiv1.PlatformPolicy{}, fmt.Errorf("MPEGFLOW_PLATFORM_POLICY: want one JSON document, found more after it")
	}
	p = p.WithEmptyLists()
	if err := p.Validate(); err != nil {
		return apiv1.PlatformPolicy{}, fmt.Errorf("MPEGFLOW_PLATFORM_POLICY: %w", err)
	}
	return p, nil
}
