package apiv1

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PlatformPolicy is what the platform lets each plan do with dedicated
// pools (docs/design/0018-platform-policy.md). The chart's platformPolicy
// value seeds it into Postgres once; afterwards a SuperAdmin edits it with
// GET and PUT /v1/platform/policy. The apiserver refuses pool creates and
// patches outside it, and the operator refuses to render pools outside it.
// The shared default pool is the platform's own and is never checked.
type PlatformPolicy struct {
	// Plans holds the rules of every plan in Plans, each required.
	Plans map[string]PlanPolicy `json:"plans"`
	// Organizations are SuperAdmin overrides keyed by organization id: an
	// entry replaces, whole, the rules of that organization's plan (so an
	// override reads on its own, without merging). Empty: none.
	Organizations map[string]PlanPolicy `json:"organizations"`
}

// PlanPolicy is the rules one plan (or one overridden organization) gets.
// Every maximum is inclusive; 0 allows none.
type PlanPolicy struct {
	// DedicatedPools: the organization may create pools of its own.
	DedicatedPools bool `json:"dedicated_pools"`
	// MaxPools caps the organization's dedicated pools.
	MaxPools int `json:"max_pools"`
	// MaxReplicasPerPool caps one pool's max_replicas.
	MaxReplicasPerPool int `json:"max_replicas_per_pool"`
	// MaxReplicasPerOrg caps the sum, over the organization's pools, of
	// max_replicas plus backfill_max_replicas: the most encode pods it can
	// have at once.
	MaxReplicasPerOrg int `json:"max_replicas_per_org"`
	// MaxPrewarmedPerPool caps one pool's pre-warmed pods: min_replicas and
	// every cron window's desired_replicas.
	MaxPrewarmedPerPool int `json:"max_prewarmed_per_pool"`
	// MaxPrewarmedPerOrg caps the sum of min_replicas over the
	// organization's pools.
	MaxPrewarmedPerOrg int `json:"max_prewarmed_per_org"`
	// GPU: the organization may create pools with accelerator nvidia.
	GPU bool `json:"gpu"`
	// MaxGPUs caps the GPUs the organization's pools can hold at once: the
	// sum, over its GPU pools, of max_replicas plus backfill_max_replicas
	// (every GPU encode pod requests one nvidia.com/gpu).
	MaxGPUs int `json:"max_gpus"`
	// NodeSelectors are the node selector pairs a pool may carry, each
	// "key=value", "key=*" for any value of key, or "*" for any pair.
	// Empty: none.
	NodeSelectors []string `json:"node_selectors"`
	// Tolerations are the tolerations a pool may carry. A pool's
	// toleration is allowed when one entry has the same key and, for each
	// of operator, value and effect, either leaves it empty (any) or has
	// the same; an entry of key "*" matches every key. Empty: none.
	Tolerations []Toleration `json:"tolerations"`
	// Resources are the ceilings of a pool's requests and limits
	// (Kubernetes quantities); an empty one sets no ceiling. A pool that
	// leaves a value empty gets the chart's default, which the platform
	// owns.
	Resources Resources `json:"resources"`
}

// DefaultPlatformPolicy is the chart's default platformPolicy and what a
// server seeds when it is given none. It follows the reference deployment:
// dedicated pools are for Pro and Enterprise, pre-warmed minimums are for
// Enterprise (free and starter submit to the shared pool, which scales from
// zero), and GPUs for Enterprise only.
func DefaultPlatformPolicy() PlatformPolicy {
	none := PlanPolicy{NodeSelectors: []string{}, Tolerations: []Toleration{}}
	return PlatformPolicy{
		Plans: map[string]PlanPolicy{
			"free":    none,
			"starter": none,
			"pro": {
				DedicatedPools: true, MaxPools: 3, MaxReplicasPerPool: 20, MaxReplicasPerOrg: 40,
				MaxPrewarmedPerPool: 2, MaxPrewarmedPerOrg: 4,
				NodeSelectors: []string{}, Tolerations: []Toleration{},
				Resources: Resources{CPURequest: "4", CPULimit: "8", MemoryRequest: "8Gi", MemoryLimit: "16Gi"},
			},
			"enterprise": {
				DedicatedPools: true, MaxPools: 20, MaxReplicasPerPool: 200, MaxReplicasPerOrg: 500,
				MaxPrewarmedPerPool: 50, MaxPrewarmedPerOrg: 100, GPU: true, MaxGPUs: 32,
				NodeSelectors: []string{"cloud.google.com/gke-accelerator=*", "nvidia.com/gpu.product=*", "node.kubernetes.io/instance-type=*"},
				Tolerations:   []Toleration{{Key: "nvidia.com/gpu"}},
				Resources:     Resources{CPURequest: "16", CPULimit: "32", MemoryRequest: "64Gi", MemoryLimit: "128Gi"},
			},
		},
		Organizations: map[string]PlanPolicy{},
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Validate checks the document: every plan present and no other, counts
// between 0 and 100000, allowlist entries and ceilings well formed,
// overrides keyed by organization id. It answers FieldErrors.
func (p PlatformPolicy) Validate() error {
	var errs FieldErrors
	for _, name := range Plans {
		pp, ok := p.Plans[name]
		if !ok {
			errs.Add("plans."+name, "is required (every plan needs its rules)")
			continue
		}
		errs = append(errs, pp.validate().Prefixed("plans."+name)...)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Plans)) {
		if !slices.Contains(Plans, name) {
			errs.Add("plans."+name, "is not a plan (plans are %s)", strings.Join(Plans, ", "))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(p.Organizations)) {
		if !uuidPattern.MatchString(id) {
			errs.Add("organizations."+id, "must be keyed by an organization id (a lowercase UUID)")
			continue
		}
		errs = append(errs, p.Organizations[id].validate().Prefixed("organizations."+id)...)
	}
	return errs.Err()
}

func (rules PlanPolicy) validate() FieldErrors {
	var errs FieldErrors
	for name, n := range map[string]int{
		"max_pools": rules.MaxPools, "max_replicas_per_pool": rules.MaxReplicasPerPool, "max_replicas_per_org": rules.MaxReplicasPerOrg,
		"max_prewarmed_per_pool": rules.MaxPrewarmedPerPool, "max_prewarmed_per_org": rules.MaxPrewarmedPerOrg, "max_gpus": rules.MaxGPUs,
	} {
		if n < 0 || n > 100000 {
			errs.Add(name, "must be between 0 and 100000")
		}
	}
	for i, s := range rules.NodeSelectors {
		if s == "*" {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok || !labelKey.MatchString(k) || (v != "*" && !labelValue.MatchString(v)) {
			errs.Add(fmt.Sprintf("node_selectors[%d]", i), "must be key=value or key=* with a valid Kubernetes label key and value")
		}
	}
	for i, t := range rules.Tolerations {
		f := fmt.Sprintf("tolerations[%d]", i)
		if t.Key != "" && t.Key != "*" && !labelKey.MatchString(t.Key) {
			errs.Add(f+".key", "must be a valid Kubernetes label key, * (any key) or empty (tolerations of every taint)")
		}
		if t.Operator != "" && t.Operator != "Equal" && t.Operator != "Exists" {
			errs.Add(f+".operator", "must be Equal, Exists or empty (any)")
		}
		if !tolerations[t.Effect] {
			errs.Add(f+".effect", "must be NoSchedule, PreferNoSchedule, NoExecute or empty (any)")
		}
		if !labelValue.MatchString(t.Value) {
			errs.Add(f+".value", "must be a valid Kubernetes label value or empty (any)")
		}
	}
	for name, q := range rules.Resources.fields() {
		if q != "" && !quantity.MatchString(q) {
			errs.Add("resources."+name, "must be a Kubernetes quantity such as 500m or 2Gi, or empty (no ceiling)")
		}
	}
	return errs
}

func (r Resources) fields() map[string]string {
	return map[string]string{"cpu_request": r.CPURequest, "memory_request": r.MemoryRequest, "cpu_limit": r.CPULimit, "memory_limit": r.MemoryLimit}
}

// WithEmptyLists returns p with every absent list and map made empty, so
// that a document given with fields left out reads [] and {} on the wire,
// never null.
func (p PlatformPolicy) WithEmptyLists() PlatformPolicy {
	fill := func(in map[string]PlanPolicy) map[string]PlanPolicy {
		out := make(map[string]PlanPolicy, len(in))
		for k, r := range in {
			if r.NodeSelectors == nil {
				r.NodeSelectors = []string{}
			}
			if r.Tolerations == nil {
				r.Tolerations = []Toleration{}
			}
			out[k] = r
		}
		return out
	}
	return PlatformPolicy{Plans: fill(p.Plans), Organizations: fill(p.Organizations)}
}

// For returns the rules of one organization: its override when the policy
// has one, else its plan's. An unknown plan gets no rules at all (nothing
// allowed), so a mistake refuses instead of granting.
func (p PlatformPolicy) For(orgID, plan string) (rules PlanPolicy, overridden bool) {
	if o, ok := p.Organizations[orgID]; ok {
		return o, true
	}
	return p.Plans[plan], false
}

// Policy rules, the Rule of a PolicyViolation: the JSON name of the
// PlanPolicy field that refused.
const (
	RuleDedicatedPools      = "dedicated_pools"
	RuleMaxPools            = "max_pools"
	RuleMaxReplicasPerPool  = "max_replicas_per_pool"
	RuleMaxReplicasPerOrg   = "max_replicas_per_org"
	RuleMaxPrewarmedPerPool = "max_prewarmed_per_pool"
	RuleMaxPrewarmedPerOrg  = "max_prewarmed_per_org"
	RuleGPU                 = "gpu"
	RuleMaxGPUs             = "max_gpus"
	RuleNodeSelectors       = "node_selectors"
	RuleTolerations         = "tolerations"
	RuleResources           = "resources"
)

// PolicyViolation is one way a pool breaks its organization's rules.
type PolicyViolation struct {
	// Rule is the PlanPolicy field that refused (Rule* constants).
	Rule string `json:"rule"`
	// Field is the JSON path of the offending pool field; empty when the
	// pool as a whole is refused (dedicated_pools, max_pools).
	Field string `json:"field,omitempty"`
	// Detail says what the rule allows.
	Detail string `json:"detail"`
}

// Capability reports whether the violation is of a capability the plan
// lacks (dedicated pools, GPUs, another pool): the API answers 403 for
// those and 422 for a value above a ceiling or outside an allowlist.
func (v PolicyViolation) Capability() bool {
	return v.Rule == RuleDedicatedPools || v.Rule == RuleGPU || v.Rule == RuleMaxPools
}

// PolicyViolations is what CheckPool found; it summarises itself in one
// line, which is what the pool records as its policy_violation.
type PolicyViolations []PolicyViolation

// String joins the violations as "rule (field): detail; …".
func (vs PolicyViolations) String() string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Rule
		if v.Field != "" {
			parts[i] += " (" + v.Field + ")"
		}
		parts[i] += ": " + v.Detail
	}
	return strings.Join(parts, "; ")
}

// CheckPool checks one dedicated pool against rules. index is the pool's
// place among the organization's pools by age (0 for the oldest; a pool
// being created comes last), and others are the organization's pools whose
// replicas count with this one's towards the per-organization ceilings.
// The API passes every other pool of the organization; the operator passes
// the older ones, so that when a ceiling is lowered the newest pools are
// the ones refused and the oldest keep running.
func (rules PlanPolicy) CheckPool(p PoolSettings, index int, others []PoolSettings) PolicyViolations {
	var vs PolicyViolations
	add := func(rule, field, format string, args ...any) {
		vs = append(vs, PolicyViolation{Rule: rule, Field: field, Detail: fmt.Sprintf(format, args...)})
	}
	if !rules.DedicatedPools {
		add(RuleDedicatedPools, "", "the organization's plan has no dedicated pools; submit to the shared pool or ask the platform for a plan that has them")
		return vs
	}
	if index >= rules.MaxPools {
		add(RuleMaxPools, "", "the organization may have at most %d dedicated pools", rules.MaxPools)
	}
	if p.Accelerator == AcceleratorNVIDIA && !rules.GPU {
		add(RuleGPU, "accelerator", "the organization's plan has no GPU pools")
	}
	if p.MaxReplicas > rules.MaxReplicasPerPool {
		add(RuleMaxReplicasPerPool, "max_replicas", "must be at most %d", rules.MaxReplicasPerPool)
	}
	if p.MinReplicas > rules.MaxPrewarmedPerPool {
		add(RuleMaxPrewarmedPerPool, "min_replicas", "must be at most %d (pre-warmed pods)", rules.MaxPrewarmedPerPool)
	}
	for i, w := range p.CronWindows {
		if w.DesiredReplicas > rules.MaxPrewarmedPerPool {
			add(RuleMaxPrewarmedPerPool, fmt.Sprintf("cron_windows[%d].desired_replicas", i), "must be at most %d (pre-warmed pods)", rules.MaxPrewarmedPerPool)
		}
	}
	pods, warm, gpus := p.MaxReplicas+p.BackfillMaxReplicas, p.MinReplicas, 0
	if p.Accelerator == AcceleratorNVIDIA {
		gpus = pods
	}
	for _, o := range others {
		pods += o.MaxReplicas + o.BackfillMaxReplicas
		warm += o.MinReplicas
		if o.Accelerator == AcceleratorNVIDIA {
			gpus += o.MaxReplicas + o.BackfillMaxReplicas
		}
	}
	if pods > rules.MaxReplicasPerOrg {
		add(RuleMaxReplicasPerOrg, "max_replicas", "the organization's pools may have at most %d replicas together (max_replicas plus backfill_max_replicas); with this pool they would have %d", rules.MaxReplicasPerOrg, pods)
	}
	if warm > rules.MaxPrewarmedPerOrg {
		add(RuleMaxPrewarmedPerOrg, "min_replicas", "the organization's pools may pre-warm at most %d pods together; with this pool they would pre-warm %d", rules.MaxPrewarmedPerOrg, warm)
	}
	if p.Accelerator == AcceleratorNVIDIA && rules.GPU && gpus > rules.MaxGPUs {
		add(RuleMaxGPUs, "max_replicas", "the organization's GPU pools may hold at most %d GPUs together (one per pod, max_replicas plus backfill_max_replicas); with this pool they would hold %d", rules.MaxGPUs, gpus)
	}
	for _, k := range slices.Sorted(maps.Keys(p.NodeSelector)) {
		if !slices.Contains(rules.NodeSelectors, k+"="+p.NodeSelector[k]) && !slices.Contains(rules.NodeSelectors, k+"=*") && !slices.Contains(rules.NodeSelectors, "*") {
			add(RuleNodeSelectors, "node_selector."+k, "%s=%s is not allowed (allowed: %s)", k, p.NodeSelector[k], orNone(rules.NodeSelectors))
		}
	}
	for i, t := range p.Tolerations {
		if !slices.ContainsFunc(rules.Tolerations, func(a Toleration) bool { return a.allows(t) }) {
			add(RuleTolerations, fmt.Sprintf("tolerations[%d]", i), "the toleration of key %q is not allowed", t.Key)
		}
	}
	ceil := rules.Resources.fields()
	for _, name := range slices.Sorted(maps.Keys(ceil)) {
		got := p.Resources.fields()[name]
		if ceil[name] == "" || got == "" {
			continue
		}
		if QuantityValue(got) > QuantityValue(ceil[name]) {
			add(RuleResources, "resources."+name, "must be at most %s", ceil[name])
		}
	}
	return vs
}

// allows reports whether the allowlist entry a admits toleration t.
func (a Toleration) allows(t Toleration) bool {
	match := func(allowed, got string) bool { return allowed == "" || allowed == got }
	op := t.Operator
	if op == "" {
		op = "Equal"
	}
	return (a.Key == t.Key || a.Key == "*") && match(a.Operator, op) && match(a.Value, t.Value) && match(a.Effect, t.Effect)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

var quantityScale = map[string]float64{
	"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
}

// QuantityValue is the value of a Kubernetes quantity in the forms pools
// accept (500m, 2, 1.5, 4Gi, 512M); it answers -1 for anything else.
func QuantityValue(q string) float64 {
	if !quantity.MatchString(q) {
		return -1
	}
	i := strings.IndexFunc(q, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, suffix := q, ""
	if i >= 0 {
		num, suffix = q[:i], q[i:]
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return -1
	}
	return f * quantityScale[suffix]
}

// UnrestrictedPlanPolicy allows every dedicated pool the API accepts at
// all: for a deployment that does not sell plans (`mpegflow dev`, tests)
// or as an override for the platform's own organization.
func UnrestrictedPlanPolicy() PlanPolicy {
	const most = 100000
	return PlanPolicy{
		DedicatedPools: true, MaxPools: most, MaxReplicasPerPool: most, MaxReplicasPerOrg: most,
		MaxPrewarmedPerPool: most, MaxPrewarmedPerOrg: most, GPU: true, MaxGPUs: most,
		NodeSelectors: []string{"*"}, Tolerations: []Toleration{{Key: "*"}},
	}
}

// UnrestrictedPlatformPolicy gives every plan UnrestrictedPlanPolicy.
func UnrestrictedPlatformPolicy() PlatformPolicy {
	p := PlatformPolicy{Plans: map[string]PlanPolicy{}, Organizations: map[string]PlanPolicy{}}
	for _, name := range Plans {
		p.Plans[name] = UnrestrictedPlanPolicy()
	}
	return p
}

// PlatformPolicyDocument is GET and PUT /v1/platform/policy's answer: the
// policy and when and by whom it last changed.
type PlatformPolicyDocument struct {
	PlatformPolicy
	// UpdatedAt is when the policy last changed (seeded or PUT).
	UpdatedAt time.Time `json:"updated_at"`
	// UpdatedBy is the SuperAdmin user who last PUT it; null when seeded
	// from the deployment's configuration.
	UpdatedBy *string `json:"updated_by"`
}
