package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// ruleFields are the JSON names of every rule of a plan (apiv1.PlanPolicy).
var ruleFields = func() []string {
	t := reflect.TypeFor[apiv1.PlanPolicy]()
	out := make([]string, 0, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}()

// missingRules names every rule a plan or organization override of a PUT
// body leaves out. PUT replaces the whole policy, and a rule left out would
// otherwise read as 0, false or empty (no pools, no GPUs) without anyone
// having said so. The body already decoded as a policy, so only presence is
// checked here.
func missingRules(body []byte) validation.Errors {
	var doc struct {
		Plans         map[string]map[string]json.RawMessage `json:"plans"`
		Organizations map[string]map[string]json.RawMessage `json:"organizations"`
	}
	var errs validation.Errors
	if err := json.Unmarshal(body, &doc); err != nil {
		// The typed decode accepted the body, so this cannot happen; say so
		// rather than let a policy through unchecked.
		errs.Add("", "the body is not a policy document: %s", err.Error())
		return errs
	}
	for _, group := range []struct {
		name  string
		rules map[string]map[string]json.RawMessage
	}{{"plans", doc.Plans}, {"organizations", doc.Organizations}} {
		for key, rules := range group.rules {
			if rules == nil {
				continue // null: Validate says what it wants
			}
			for _, f := range ruleFields {
				if _, ok := rules[f]; !ok {
					errs.Add(group.name+"."+key+"."+f, "is required: a policy replaces the whole document, so every rule is given")
				}
			}
		}
	}
	return errs
}

// platformPolicy is the policy pool writes are checked against: the stored
// one, or apiv1.DefaultPlatformPolicy before `serve` seeded one (tests that
// build a Server directly), so an absent row refuses what the default
// refuses instead of allowing everything.
func (s *Server) platformPolicy(ctx context.Context) (store.PlatformPolicy, error) {
	p, err := s.store.GetPlatformPolicy(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return store.PlatformPolicy{Policy: apiv1.DefaultPlatformPolicy()}, nil
	}
	return p, err
}

func policyDocumentOut(p store.PlatformPolicy) apiv1.PlatformPolicyDocument {
	return apiv1.PlatformPolicyDocument{PlatformPolicy: p.Policy.WithEmptyLists(), UpdatedAt: p.UpdatedAt, UpdatedBy: idPtr(p.UpdatedBy)}
}

func (s *Server) getPlatformPolicy(c *fiber.Ctx) error {
	p, err := s.platformPolicy(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(policyDocumentOut(p))
}

func (s *Server) putPlatformPolicy(c *fiber.Ctx) error {
	var req apiv1.PlatformPolicy
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if errs := missingRules(c.Body()); len(errs) > 0 {
		return invalid(errs)
	}
	if err := req.Validate(); err != nil {
		return err
	}
	ctx := c.UserContext()
	p, err := s.store.PutPlatformPolicy(ctx, req.WithEmptyLists(), principal(c).UserID)
	if err != nil {
		return err
	}
	s.syncPolicyViolations(ctx, nil)
	return c.JSON(policyDocumentOut(p))
}

// policyGuard checks a dedicated pool write of orgID against rules
// (store.PoolGuard). A capability the rules lack answers 403, a value
// above a ceiling or outside an allowlist 422; both have problem type
// policy, name the rules in the detail and the offending fields in errors.
func policyGuard(policy apiv1.PlatformPolicy, orgID string) store.PoolGuard {
	return func(plan string, set store.PoolSettings, index int, others []store.PoolSettings) error {
		rules, overridden := policy.For(orgID, plan)
		wire := make([]apiv1.PoolSettings, len(others))
		for i, o := range others {
			wire[i] = o.Wire()
		}
		vs := rules.CheckPool(set.Wire(), index, wire)
		if len(vs) == 0 {
			return nil
		}
		status, names := fiber.StatusUnprocessableEntity, []string{}
		var errs apiv1.FieldErrors
		for _, v := range vs {
			if v.Capability() {
				status = fiber.StatusForbidden
			}
			names = append(names, v.Rule)
			field := v.Field
			if field == "" {
				field = "pool"
			}
			errs.Add(field, "%s: %s", v.Rule, v.Detail)
		}
		whose := "the " + plan + " plan"
		if overridden {
			whose = "the organization's policy override"
		}
		p := problem(status, "policy", "the pool is outside the platform policy for "+whose+" (rules: "+strings.Join(names, ", ")+
			"); see errors, or ask the platform for a larger plan")
		p.Errors = errs
		return p
	}
}

// syncPolicyViolations records on every dedicated pool whether it is
// outside the policy (store.CheckPolicy), after anything that may change
// that: the policy, an organization's plan, a pool. It logs instead of
// failing the request that triggered it: the write it follows is
// committed, and the operator checks the policy itself either way.
func (s *Server) syncPolicyViolations(ctx context.Context, org *uuid.UUID) {
	if err := s.recordPolicyViolations(ctx, org); err != nil {
		s.log.WarnContext(ctx, "pools' policy_violation not refreshed; the next policy, plan or pool change refreshes it, check Postgres",
			slog.Any("error", err))
	}
}

// RecordPolicyViolations checks every dedicated pool against the stored
// policy and records the result on each (policy_violation); `serve` runs it
// at start, after seeding the policy.
func (s *Server) RecordPolicyViolations(ctx context.Context) error {
	return s.recordPolicyViolations(ctx, nil)
}

// recordPolicyViolations checks and records the dedicated pools of org
// (every organization's when nil). A pool write or plan change can only
// move its own organization's pools in or out of the policy (the policy
// counts per organization), so those refresh that organization alone; a
// policy change refreshes all.
func (s *Server) recordPolicyViolations(ctx context.Context, org *uuid.UUID) error {
	policy, err := s.platformPolicy(ctx)
	if err != nil {
		return err
	}
	pools, err := s.store.ListPolicyPoolsOf(ctx, org)
	if err != nil {
		return err
	}
	texts := map[string]string{}
	for id, vs := range store.CheckPolicy(policy.Policy, pools) {
		texts[id] = vs.String()
	}
	return s.store.RecordPolicyViolationsOf(ctx, org, texts)
}
