package apiv1

// Fair share (docs/design/0020-fair-share.md): within each pool and lane,
// claims take turns across the organizations that have queued jobs,
// weighted round robin. An organization with weight 4 is served four jobs
// for every one of an organization with weight 1 while both have work
// waiting; an organization with nothing queued takes no turn, so its share
// goes to the others.
const (
	// MinShareWeight and MaxShareWeight bound an organization's
	// share_weight.
	MinShareWeight = 1
	MaxShareWeight = 100
)

// PlanShareWeights is each plan's default share weight: free 1, starter 1,
// pro 2, enterprise 4. A platform administrator may override it per
// organization (Organization.ShareWeight).
var PlanShareWeights = map[string]int{
	"free":       1,
	"starter":    1,
	"pro":        2,
	"enterprise": 4,
}

// ShareWeight is the weight an organization's queued jobs get: its
// override when set, else its plan's default (1 for a plan not listed).
func ShareWeight(plan string, override *int) int {
	if override != nil {
		return *override
	}
	if w, ok := PlanShareWeights[plan]; ok {
		return w
	}
	return MinShareWeight
}
