package operator

import (
	"bytes"
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/mpegflow/mpegflow/internal/store"
)

// Redacted replaces secret values in a plan: a plan is for reading tuning,
// and must be safe to paste into a ticket.
const Redacted = "<redacted>"

// PlanObjects renders pool p as the objects the operator applies, in apply
// order, each as its apply configuration (apiVersion, kind, metadata, spec
// or data), with Secret data redacted. `mpegflow pools plan` and the REST
// API's GET /v1/pools/{id}/plan both print these. A pool recorded as
// outside the platform policy is planned as the operator treats it: no
// ScaledJob, and the reason on the NetworkPolicy.
func PlanObjects(cfg Config, p store.Pool) ([]map[string]any, error) {
	objs, err := Render(cfg, p)
	if err != nil {
		return nil, err
	}
	if p.PolicyViolation != nil {
		objs.refuse(*p.PolicyViolation)
	}
	list, err := objs.applyList()
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(list))
	for _, o := range list {
		if o.resource == SecretResource {
			data, _ := o.obj.Object["data"].(map[string]any)
			for k := range data {
				data[k] = Redacted
			}
		}
		out = append(out, o.obj.Object)
	}
	return out, nil
}

// Plan renders pool p as the multi-document YAML the operator applies
// (apply order), with Secret data redacted.
func Plan(cfg Config, p store.Pool) ([]byte, error) {
	objs, err := PlanObjects(cfg, p)
	if err != nil {
		return nil, err
	}
	return PlanYAML(objs)
}

// PlanYAML writes plan objects as one YAML document each, separated by
// "---" lines.
func PlanYAML(objs []map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("marshal plan object %d (%v): %w", i, o["kind"], err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// Planner renders plans with one validated configuration. The API server
// holds one (GET /v1/pools/{id}/plan) through its own small interface, so
// it does not import this package.
type Planner struct{ cfg Config }

// NewPlanner validates cfg as the reconciler would.
func NewPlanner(cfg Config) (*Planner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Planner{cfg: cfg}, nil
}

// PlannerFromEnv is the planner of a server given the operator's
// variables (EnvVars, those with Render above all): nil without
// MPEGFLOW_ENCODER_IMAGE, so that a server without them answers plans with
// 503, and an error when the image is set but the rest is incomplete or
// invalid, so that a half-configured server fails at start rather than
// showing plans the operator would not apply.
func PlannerFromEnv(getenv func(string) string) (*Planner, error) {
	if getenv("MPEGFLOW_ENCODER_IMAGE") == "" {
		return nil, nil
	}
	cfg, _, err := FromEnv(getenv)
	if err == nil {
		var pl *Planner
		if pl, err = NewPlanner(cfg); err == nil {
			return pl, nil
		}
	}
	return nil, fmt.Errorf("pool plans (MPEGFLOW_ENCODER_IMAGE is set, so the operator's variables must be complete): %w", err)
}

// PlanObjects is PlanObjects with the planner's configuration.
func (pl *Planner) PlanObjects(p store.Pool) ([]map[string]any, error) {
	return PlanObjects(pl.cfg, p)
}

// PlanYAML is Plan with the planner's configuration: the bytes
// `mpegflow pools plan` prints.
func (pl *Planner) PlanYAML(p store.Pool) ([]byte, error) {
	return Plan(pl.cfg, p)
}

// refuse turns a pool's objects into those of a pool outside the platform
// policy: no ScaledJob, so KEDA starts no pod with settings the platform
// does not allow, and the reason on the NetworkPolicy, which stays (with
// the Secret and TriggerAuthentication) so pods already running keep their
// isolation and finish their jobs.
func (o *Objects) refuse(reason string) {
	o.ScaledJobs = nil
	if o.NetworkPolicy.Annotations == nil {
		o.NetworkPolicy.Annotations = map[string]string{}
	}
	o.NetworkPolicy.Annotations[AnnotationPolicyViolation] = reason
}
