package apiserver

import (
	"reflect"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/backfill"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/caption"
	"github.com/mpegflow/mpegflow/internal/encodespec"
	"github.com/mpegflow/mpegflow/internal/store"
)

// The schema overrides of the OpenAPI document (openapi.go explains the
// rules). Types this package owns can carry tags instead: enum:"a,b" and
// openapi:"ref=EncodeSpec". TestOpenAPIOverridesApply fails when an entry
// here names a property the document does not have, so a renamed field
// cannot leave its override behind unnoticed.

// refTypes are the documents a field tagged openapi:"ref=Name" can hold.
var refTypes = map[string]reflect.Type{
	"EncodeSpec":   reflect.TypeOf(encodespec.Spec{}),
	"JobUsage":     reflect.TypeOf(store.Usage{}),
	"OutputRecord": reflect.TypeOf(outputRecord{}),
}

// componentNames rename types whose Go name says too little in a document
// of the whole API.
var componentNames = map[reflect.Type]string{
	reflect.TypeOf(encodespec.Spec{}): "EncodeSpec",
	reflect.TypeOf(backfill.Source{}): "BatchSource",
	// What one job consumed; Usage is the organization's usage by day.
	reflect.TypeOf(store.Usage{}): "JobUsage",
}

// optionalComponents are components none of whose fields is always present.
var optionalComponents = map[reflect.Type]bool{
	// A job's usage is {} until it finishes.
	reflect.TypeOf(store.Usage{}): true,
}

// typeEnums are the values of named string types of other packages (types
// of this package or of api/v1 implement Enum() []string instead).
var typeEnums = map[reflect.Type][]string{
	reflect.TypeOf(auth.Role("")): roleNames(),
}

func roleNames() []string {
	out := make([]string, len(auth.Roles))
	for i, r := range auth.Roles {
		out[i] = string(r)
	}
	return out
}

// outputRecord documents one element of a job's outputs as the coordinator
// stores it (dispatcher/outputs.go writes it; GET /v1/jobs/{id}/outputs
// presigns each key).
type outputRecord struct {
	Name        string            `json:"name"`
	Kind        string            `json:"kind"`
	SizeBytes   int64             `json:"size_bytes"`
	ContentType string            `json:"content_type"`
	Key         string            `json:"key"`
	Attributes  map[string]string `json:"attributes,omitempty"`
}

var (
	lanes        = apiv1.Lanes
	accelerators = apiv1.Accelerators
)

// fieldSchemas replace the schema of one property, keyed by
// "Component.json_name" of the struct that declares the field (an embedding
// struct inherits it).
func fieldSchemas() map[string]func(b *docBuilder) map[string]any {
	return map[string]func(b *docBuilder) map[string]any{
		"Job.status":   enumSchema(apiv1.JobStatuses...),
		"Job.lane":     enumSchema(lanes...),
		"Job.spec":     refSchema("EncodeSpec"),
		"Job.usage":    refSchema("JobUsage"),
		"Job.outputs":  arraySchema(refSchema("OutputRecord")),
		"Job.metadata": stringMapSchema,

		"JobRequest.lane":   enumSchema(lanes...),
		"JobRequest.spec":   inputSchema("EncodeSpec"),
		"JobCaption.format": enumSchema(caption.Formats...),

		"WorkflowRequest.spec": inputSchema("EncodeSpec"),
		"WorkflowPatch.spec":   inputSchema("EncodeSpec"),
		"Workflow.spec":        refSchema("EncodeSpec"),

		// The encoder reports its accelerator; a job whose encoder reported
		// none shows "" (usage records count it as cpu).
		"JobUsage.accelerator":     enumSchema(append([]string{""}, accelerators...)...),
		"PoolSettings.accelerator": enumSchema(accelerators...),
		"PoolRequest.accelerator":  nullableSchema(enumSchema(accelerators...)),
		// One job per pod (the default) up to MaxJobsPerPod; the shared
		// pool always runs one.
		"PoolSettings.jobs_per_pod": intRangeSchema(1, apiv1.MaxJobsPerPod),
		"PoolRequest.jobs_per_pod":  nullableSchema(intRangeSchema(1, apiv1.MaxJobsPerPod)),

		"Worker.lane": enumSchema(lanes...),

		"Webhook.events":         arraySchema(enumSchema(apiv1.WebhookEvents...)),
		"WebhookRequest.events":  arraySchema(enumSchema(apiv1.WebhookEvents...)),
		"WebhookPatch.events":    arraySchema(enumSchema(apiv1.WebhookEvents...)),
		"WebhookDelivery.status": enumSchema(apiv1.DeliveryStatuses...),

		// An encode spec; packaging is "" in a thumbnails-only spec.
		"EncodeSpec.packaging":       packagingSchema,
		"Rendition.codec":            enumSchema(encodespec.CodecH264, encodespec.CodecHEVC, encodespec.CodecAV1, encodespec.CodecVP9),
		"Audio.codec":                enumSchema(encodespec.AudioAAC, encodespec.AudioOpus),
		"Conditioning.deinterlace":   enumSchema(encodespec.ConditionAuto, encodespec.ConditionOn, encodespec.ConditionOff),
		"Conditioning.tone_map":      enumSchema(encodespec.ConditionAuto, encodespec.ConditionOff, encodespec.ConditionPassthrough),
		"Conditioning.frame_rate":    enumSchema(encodespec.ConditionAuto, encodespec.ConditionKeep),
		"Encryption.method":          enumSchema(encodespec.EncryptAES128, encodespec.EncryptSampleAES, encodespec.EncryptCENC),
		"Ladder.mode":                enumSchema(encodespec.LadderFixed, encodespec.LadderPerTitle),
		"Ladder.target_psnr_db":      numberRangeSchema(encodespec.MinTargetPSNRDB, encodespec.MaxTargetPSNRDB),
		"Chunking.chunk_seconds":     numberRangeSchema(encodespec.MinChunkSeconds, encodespec.MaxChunkSeconds),
		"Chunking.min_input_seconds": numberRangeSchema(0, encodespec.MaxMinInputSeconds),
		"Chunking.crf":               intRangeSchema(0, encodespec.MaxChunkCRF),

		"BatchSummary.expansion":              enumSchema(store.BatchExpanding, store.BatchExpanded, store.BatchCancelled, store.BatchFailed),
		"Batch.status":                        enumSchema(apiv1.BatchExpanding, apiv1.BatchRunning, apiv1.BatchCompleted, apiv1.BatchCancelled, apiv1.BatchFailed),
		"Worker.status":                       enumSchema(store.WorkerOnline, store.WorkerDraining, store.WorkerEvicted, store.WorkerOffline),
		"Pool.status":                         enumSchema("active", "paused"),
		"Organization.status":                 enumSchema("active", "suspended"),
		"Organization.plan":                   enumSchema(apiv1.Plans...),
		"Organization.share_weight":           nullableSchema(intRangeSchema(apiv1.MinShareWeight, apiv1.MaxShareWeight)),
		"Organization.effective_share_weight": intRangeSchema(apiv1.MinShareWeight, apiv1.MaxShareWeight),
		"OrganizationAdminPatch.share_weight": nullableSchema(intRangeSchema(apiv1.MinShareWeight, apiv1.MaxShareWeight)),
		"OrganizationAdminPatch.plan":         enumSchema(apiv1.Plans...),
		"Billing.plan":                        enumSchema(apiv1.Plans...),
		"BillingPatch.plan":                   nullableSchema(enumSchema(apiv1.Plans...)),
		"Invitation.status":                   enumSchema(apiv1.InvitationPending, apiv1.InvitationRedeemed, apiv1.InvitationRevoked, apiv1.InvitationExpired),
		"Pool.paused_by":                      nullableSchema(enumSchema(apiv1.PausedBySchedule, apiv1.PausedByManual)),
		"PoolChange.action":                   enumSchema(apiv1.PoolActionPause, apiv1.PoolActionResume),
	}
}

// packagingSchema is the component Packaging: a string, or ["hls", "dash"]
// for one set of CMAF segments referenced by both (encodespec.Packaging).
// One component for EncodeSpec and EncodeSpecInput, so that generated
// clients get one union type.
func packagingSchema(b *docBuilder) map[string]any {
	const name = "Packaging"
	ref := func(n string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + n} }
	if _, ok := b.names[name]; !ok {
		b.names[name] = reflect.TypeFor[encodespec.Packaging]()
		b.schemas["PackagingFormat"] = map[string]any{"type": "string", "enum": toAny([]string{
			string(encodespec.PackagingHLS), string(encodespec.PackagingDASH)})}
		b.schemas["PackagingName"] = map[string]any{"type": "string", "enum": toAny([]string{"",
			string(encodespec.PackagingMP4), string(encodespec.PackagingHLS), string(encodespec.PackagingDASH), string(encodespec.PackagingCMAF)})}
		b.schemas["PackagingList"] = map[string]any{"type": "array", "minItems": 1, "maxItems": 2, "uniqueItems": true,
			"items": ref("PackagingFormat")}
		b.schemas[name] = map[string]any{"oneOf": []any{ref("PackagingName"), ref("PackagingList")}}
	}
	return ref(name)
}

func enumSchema(values ...string) func(*docBuilder) map[string]any {
	return func(*docBuilder) map[string]any { return map[string]any{"type": "string", "enum": values} }
}

func intRangeSchema(lo, hi int) func(*docBuilder) map[string]any {
	return func(*docBuilder) map[string]any {
		return map[string]any{"type": "integer", "minimum": lo, "maximum": hi}
	}
}

func numberRangeSchema(lo, hi float64) func(*docBuilder) map[string]any {
	return func(*docBuilder) map[string]any {
		return map[string]any{"type": "number", "minimum": lo, "maximum": hi}
	}
}

func refSchema(name string) func(*docBuilder) map[string]any {
	return func(b *docBuilder) map[string]any { return b.schema(refTypes[name]) }
}

// inputSchema is the schema of a document a client sends and the server
// completes with defaults: EncodeSpecInput requires nothing, the server
// fills defaults and validates the whole (422 names each field), and
// answers the completed EncodeSpec.
func inputSchema(name string) func(*docBuilder) map[string]any {
	return func(b *docBuilder) map[string]any { return b.inputSchema(refTypes[name]) }
}

func arraySchema(items func(*docBuilder) map[string]any) func(*docBuilder) map[string]any {
	return func(b *docBuilder) map[string]any { return map[string]any{"type": "array", "items": items(b)} }
}

func nullableSchema(s func(*docBuilder) map[string]any) func(*docBuilder) map[string]any {
	return func(b *docBuilder) map[string]any { return nullable(s(b)) }
}

func stringMapSchema(*docBuilder) map[string]any {
	return map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}
}
