package apiserver

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// The hostile-input contracts of issue 14: what the API answers to storage
// references that escape the caller's organization and to poisoned text.
// Each case states the answer once the fixes are in (422 problem+json
// naming the field; never 5xx). TestHostileStorageReferences and
// TestHostileText fail until those fixes merge; the lead runs them after
// merging every branch. TestHostileTextCoversEveryTextField passes today and
// keeps the text cases complete as request types grow.

// storageEscapes are s3:// inputs B may not reference: another
// organization's objects, other buckets, and its own root left by
// traversal or encoding. Each is refused as a job input (422 naming
// input.url) and as a manifest line (422 naming the line).
func storageEscapes(w *hostileWorld) []struct{ name, url string } {
	bucket := w.f.objects.Bucket()
	a, b := w.f.orgA.ID.String(), w.f.orgB.ID.String()
	libA := "orgs/" + a + "/library-secret-a/in.mp4"
	return []struct{ name, url string }{
		{"other org's asset object", "s3://" + bucket + "/orgs/" + a + "/assets/" + w.a[kindAsset] + "/source"},
		{"other org's job output", "s3://" + bucket + "/orgs/" + a + "/jobs/" + w.a[kindFinished] + "/outputs/output-secret-a.mp4"},
		{"other org's library object", "s3://" + bucket + "/" + libA},
		{"other org's id upper-cased", "s3://" + bucket + "/orgs/" + strings.ToUpper(a) + "/library-secret-a/in.mp4"},
		{"object outside every org", "s3://" + bucket + "/secret.mp4"},
		{"the orgs root", "s3://" + bucket + "/orgs/" + a},
		{"another bucket", "s3://other-" + bucket + "/orgs/" + b + "/library-own-b/in.mp4"},
		{"bucket as a virtual host", "s3://" + bucket + ".s3.amazonaws.com/orgs/" + b + "/library-own-b/in.mp4"},
		{"traversal out of own root", "s3://" + bucket + "/orgs/" + b + "/../" + a + "/library-secret-a/in.mp4"},
		{"traversal from an own object", "s3://" + bucket + "/orgs/" + b + "/library-own-b/../../" + a + "/library-secret-a/in.mp4"},
		{"encoded traversal", "s3://" + bucket + "/orgs/" + b + "/%2e%2e/" + a + "/library-secret-a/in.mp4"},
		{"encoded slashes", "s3://" + bucket + "/orgs%2F" + a + "%2Flibrary-secret-a%2Fin.mp4"},
		{"encoded slash after own root", "s3://" + bucket + "/orgs/" + b + "%2F..%2F" + a + "/library-secret-a/in.mp4"},
		{"backslash traversal", "s3://" + bucket + `/orgs/` + b + `/..\` + a + `\library-secret-a\in.mp4`},
		{"dot segment before the root", "s3://" + bucket + "/./" + libA},
		{"double slash before the root", "s3://" + bucket + "//" + libA},
		{"upper-case scheme", "S3://" + bucket + "/" + libA},
		{"credentials in the authority", "s3://key:secret@" + bucket + "/orgs/" + b + "/library-own-b/in.mp4"},
	}
}

// prefixEscapes are batch source prefixes B may not list.
func prefixEscapes(w *hostileWorld) []struct{ name, prefix string } {
	bucket := w.f.objects.Bucket()
	a, b := w.f.orgA.ID.String(), w.f.orgB.ID.String()
	return []struct{ name, prefix string }{
		{"other org's root", "s3://" + bucket + "/orgs/" + a + "/"},
		{"other org's library", w.prefixA},
		{"the whole bucket", "s3://" + bucket + "/"},
		{"all orgs", "s3://" + bucket + "/orgs/"},
		{"another bucket", "s3://other-" + bucket + "/orgs/" + b + "/"},
		{"traversal out of own root", "s3://" + bucket + "/orgs/" + b + "/../" + a + "/"},
		{"traversal to the bucket root", "s3://" + bucket + "/orgs/" + b + "/../../"},
		{"encoded traversal", "s3://" + bucket + "/orgs/" + b + "/%2e%2e/" + a + "/"},
		{"encoded slash after own root", "s3://" + bucket + "/orgs/" + b + "%2F..%2F" + a + "/"},
		{"backslash traversal", "s3://" + bucket + "/orgs/" + b + `/..\` + a + `\`},
	}
}

// TestHostileStorageReferences: B names storage outside its organization's
// root as a job input, a batch prefix or a manifest line; every one is
// refused with 422 naming the field, and the same references inside B's
// root are accepted (the controls).
func TestHostileStorageReferences(t *testing.T) {
	t.Parallel()
	w := newHostileWorld(t)
	f := w.f
	inv := newInventory(t, "contracts")
	key := f.keyB
	// A's asset has content, so a presigned read of it would succeed.
	stored, err := f.store.GetAsset(t.Context(), f.orgA.ID, uuid.MustParse(w.a[kindAsset]))
	require.NoError(t, err)
	require.NoError(t, f.objects.Put(t.Context(), stored.ObjectKey, strings.NewReader("secret-a")))
	ownObject := "s3://" + f.objects.Bucket() + "/orgs/" + f.orgB.ID.String() + "/library-own-b/in.mp4"

	expect := func(t *testing.T, r response, status int, field string) {
		t.Helper()
		assert.Equal(t, status, r.Status, "%s", r.Body)
		assert.Less(t, r.Status, 500)
		if status == http.StatusUnprocessableEntity && r.Status == status {
			assert.Contains(t, r.fields(t), field)
		}
	}
	job := func(u string) map[string]any {
		return map[string]any{"input": map[string]any{"url": u}, "workflow": "mp4-720p"}
	}

	for _, tc := range storageEscapes(w) {
		t.Run("job input/"+tc.name, func(t *testing.T) {
			inv.add("storage escapes: job input.url")
			expect(t, f.do(t, "POST", "/v1/jobs", key, job(tc.url)), 422, "input.url")
		})
		t.Run("job caption/"+tc.name, func(t *testing.T) {
			inv.add("storage escapes: job captions[].url")
			body := job(ownObject)
			body["captions"] = []map[string]any{
				{"url": ownObject + ".srt", "language": "en", "format": "srt"},
				{"url": tc.url, "language": "fr", "format": "srt"},
			}
			expect(t, f.do(t, "POST", "/v1/jobs", key, body), 422, "captions[1].url")
		})
		t.Run("manifest line/"+tc.name, func(t *testing.T) {
			inv.add("storage escapes: batch manifest line")
			body := map[string]any{"workflow": "mp4-720p", "source": map[string]any{"manifest_asset_id": w.uploadManifest(t, tc.url)}}
			expect(t, f.do(t, "POST", "/v1/batches", key, body), 422, "source.lines[1]")
		})
	}
	for _, tc := range prefixEscapes(w) {
		t.Run("batch prefix/"+tc.name, func(t *testing.T) {
			inv.add("storage escapes: batch source.prefix")
			body := map[string]any{"workflow": "mp4-720p", "source": map[string]any{"prefix": tc.prefix}}
			r := f.do(t, "POST", "/v1/batches", key, body)
			expect(t, r, 422, "source.prefix")
			// Refused for where it points, not because this S3 server's
			// listing came back empty: a server that resolves "..", or a
			// bucket holding such keys, would list what it names.
			if r.Status == http.StatusUnprocessableEntity {
				for _, e := range r.problem(t).Errors {
					assert.NotContains(t, e.Detail, "no objects under", "the prefix was listed")
				}
			}
		})
	}

	t.Run("control/own object as job input", func(t *testing.T) {
		inv.add("storage references: controls")
		expect(t, f.do(t, "POST", "/v1/jobs", key, job(ownObject)), 201, "")
	})
	t.Run("control/own object as a job caption", func(t *testing.T) {
		inv.add("storage references: controls")
		body := job(ownObject)
		body["captions"] = []map[string]any{{"url": ownObject + ".vtt", "language": "fr", "format": "vtt"}}
		expect(t, f.do(t, "POST", "/v1/jobs", key, body), 201, "")
	})
	t.Run("control/own object in a manifest", func(t *testing.T) {
		inv.add("storage references: controls")
		body := map[string]any{"workflow": "mp4-720p", "source": map[string]any{"manifest_asset_id": w.uploadManifest(t, ownObject)}}
		expect(t, f.do(t, "POST", "/v1/batches", key, body), 201, "")
	})
	t.Run("control/own prefix", func(t *testing.T) {
		inv.add("storage references: controls")
		body := map[string]any{"key": "control", "workflow": "mp4-720p", "source": map[string]any{"prefix": w.prefixB}}
		expect(t, f.do(t, "POST", "/v1/batches", key, body), 201, "")
	})
}

// textBody is a valid request that sets text fields of a route's body: the
// base every poison is put into, one field at a time.
type textBody struct {
	path func(w *hostileWorld) string // nil: the route's path as it is
	json func(w *hostileWorld) string
	role auth.Role // B's member who sends it ("": the owner)
	// echoless: the answer does not repeat the body's text (a plan preview:
	// the objects the operator applies carry no pool name), so a
	// verbatim-kept text is checked only for a 2xx, not in the answer.
	echoless bool
}

const fullSpec = `{"packaging":"mp4","renditions":[{"name":"low","codec":"h264","height":360,"bitrate_kbps":800,"preset":"fast","profile":"high"}],"audio":{"codec":"aac","bitrate_kbps":128,"channels":2,"languages":["en"],"stream_indexes":[0]},"conditioning":{"deinterlace":"auto","tone_map":"auto","frame_rate":"keep"},"ladder":{"mode":"per_title","target_psnr_db":42}}`

// encryptedSpec sets the text fields fullSpec cannot (encryption needs
// segments).
const encryptedSpec = `{"packaging":"hls","renditions":[{"codec":"h264","height":360,"bitrate_kbps":800}],"encryption":{"method":"aes-128"}}`

const fullPool = `{"name":"b","accelerator":"cpu","max_replicas":10,
	"cron_windows":[{"timezone":"Europe/Paris","start":"0 8 * * 1-5","end":"0 18 * * 1-5","desired_replicas":2}],
	"resources":{"cpu_request":"500m","memory_request":"1Gi","cpu_limit":"2","memory_limit":"2Gi"},
	"node_selector":{"pool":"b"},"tolerations":[{"key":"gpu","operator":"Equal","value":"true","effect":"NoSchedule"}],
	"pause_windows":[{"start":"0 22 * * *","end":"0 6 * * *","timezone":"Europe/Paris"}]}`

// unrestrictedPolicyJSON is apiv1.UnrestrictedPlatformPolicy as a body:
// the fixture's seed, so putting it changes nothing for the other cases.
var unrestrictedPolicyJSON = func() string {
	b, err := json.Marshal(apiv1.UnrestrictedPlatformPolicy())
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// fullPolicy sets every text field of a policy, B's override included,
// and still allows every pool.
func fullPolicy(w *hostileWorld) string {
	rules := apiv1.UnrestrictedPlanPolicy()
	rules.Tolerations = append([]apiv1.Toleration{{Key: "gpu", Operator: "Equal", Value: "true", Effect: "NoSchedule"}}, rules.Tolerations...)
	rules.Resources = apiv1.Resources{CPURequest: "1000", MemoryRequest: "1000Ti", CPULimit: "1000", MemoryLimit: "1000Ti"}
	p := apiv1.PlatformPolicy{Plans: map[string]apiv1.PlanPolicy{}, Organizations: map[string]apiv1.PlanPolicy{w.f.orgB.ID.String(): rules}}
	for _, name := range apiv1.Plans {
		p.Plans[name] = rules
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func ownPath(prefix string, kind objKind) func(w *hostileWorld) string {
	return func(w *hostileWorld) string { return prefix + w.b[kind] }
}

func fixed(s string) func(*hostileWorld) string { return func(*hostileWorld) string { return s } }

// uniqueWorkflow is a workflow body with a name of its own: names are
// unique in an organization, and a clash would answer 409 before any
// poison is looked at.
func uniqueWorkflow(w *hostileWorld) string {
	return fmt.Sprintf(`{"name":"w-%d","description":"d","spec":%s}`, w.next(), fullSpec)
}

func uniqueEncryptedWorkflow(w *hostileWorld) string {
	return fmt.Sprintf(`{"name":"w-%d","description":"d","spec":%s}`, w.next(), encryptedSpec)
}

// textBodies gives, for every route with a request body, valid bodies of
// org B that between them set every text field of the body's type
// (TestHostileTextCoversEveryTextField holds them to it).
var textBodies = map[string][]textBody{
	"POST /v1/jobs": {
		{json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"input":{"url":"https://media.b.example/in.mp4"},"workflow":"mp4-720p","pool":%q,"lane":"live","metadata":{"note":"b"}}`, w.b[kindPool])
		}},
		{json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"input":{"asset_id":%q},"workflow_id":%q}`, w.b[kindAsset], w.b[kindWorkflow])
		}},
		{json: fixed(`{"input":{"url":"https://media.b.example/in.mp4"},"spec":` + fullSpec + `}`)},
		{json: fixed(`{"input":{"url":"https://media.b.example/in.mp4"},"spec":` + encryptedSpec + `}`)},
		{json: fixed(`{"input":{"url":"https://media.b.example/in.mp4"},"workflow":"mp4-720p","captions":[{"url":"https://media.b.example/fr.srt","language":"fr","format":"srt"}]}`)},
	},
	"POST /v1/jobs/:id/clearkey": {{path: func(w *hostileWorld) string { return "/v1/jobs/" + w.b[kindEncrypted] + "/clearkey" },
		json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"kids":[%q],"type":"temporary"}`, w.b[kindContentKey])
		}}},
	"POST /v1/batches": {
		{json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"key":"text-%d","workflow":"mp4-720p","pool":%q,"lane":"backfill","source":{"prefix":%q,"include":["skip/*","*.mp4"],"exclude":["skip/*"]}}`, w.next(), w.b[kindPool], w.prefixB)
		}},
		{json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"key":"text-%d","workflow_id":%q,"source":{"manifest_asset_id":%q,"format":"jsonl","on_error":"skip"}}`, w.next(), w.b[kindWorkflow], w.manifestB)
		}},
	},
	"POST /v1/workflows":      {{json: uniqueWorkflow}, {json: uniqueEncryptedWorkflow}},
	"PATCH /v1/workflows/:id": {{path: ownPath("/v1/workflows/", kindWorkflow), json: uniqueWorkflow}, {path: ownPath("/v1/workflows/", kindWorkflow), json: uniqueEncryptedWorkflow}},
	"POST /v1/assets":         {{json: fixed(`{"filename":"b.mp4","content_type":"video/mp4","size_bytes":1}`)}},
	"POST /v1/assets/:id/upload/parts": {{path: func(w *hostileWorld) string { return "/v1/assets/" + w.b[kindUpload] + "/upload/parts" },
		json: fixed(`{"part_numbers":[1]}`)}},
	"POST /v1/assets/:id/upload/complete": {{path: func(w *hostileWorld) string { return "/v1/assets/" + w.b[kindUpload] + "/upload/complete" },
		json: fixed(`{"parts":[{"part_number":1,"etag":"\"0\""},{"part_number":2,"etag":"\"0\""}]}`)}},
	"POST /v1/webhooks":      {{json: fixed(`{"url":"https://hooks.b.example/h","description":"d","events":["job.completed"]}`)}},
	"PATCH /v1/webhooks/:id": {{path: ownPath("/v1/webhooks/", kindWebhook), json: fixed(`{"url":"https://hooks.b.example/h","description":"d","events":["job.completed"],"enabled":true}`)}},
	"PATCH /v1/organization": {{json: fixed(`{"name":"Org B"}`)}},
	"PATCH /v1/organization/billing": {{json: func(w *hostileWorld) string {
		// The plan may only repeat B's own (a platform administrator changes it).
		return fmt.Sprintf(`{"plan":%q,"billing_email":"bill@b.example","billing_name":"B"}`, w.f.orgB.Plan)
	}}},
	"POST /v1/members": {{json: func(w *hostileWorld) string {
		return fmt.Sprintf(`{"email":"text-%d@b.example","name":"M","role":"viewer"}`, w.next())
	}}},
	"PATCH /v1/members/:id": {{path: ownPath("/v1/members/", kindMember), json: fixed(`{"role":"viewer","name":"M"}`)}},
	"POST /v1/members/:id/api-keys": {{path: func(w *hostileWorld) string { return "/v1/members/" + w.b[kindMember] + "/api-keys" },
		json: fixed(`{"name":"k","role":"viewer"}`)}},
	"POST /v1/members/:id/invitations": {{path: func(w *hostileWorld) string { return "/v1/members/" + w.b[kindMember] + "/invitations" },
		json: fixed(`{"role":"viewer","expires_in_seconds":3600}`)}},
	"PUT /v1/platform/policy": {{role: auth.SuperAdmin, json: fullPolicy}},
	"POST /v1/admin/organizations/:id/storage-grants": {{role: auth.SuperAdmin,
		path: func(w *hostileWorld) string {
			return "/v1/admin/organizations/" + w.f.orgB.ID.String() + "/storage-grants"
		},
		json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"bucket":"b-bucket-%d","prefix":"media/"}`, w.next())
		}}},
	"PATCH /v1/admin/organizations/:id": {{role: auth.SuperAdmin,
		path: func(w *hostileWorld) string { return "/v1/admin/organizations/" + w.f.orgB.ID.String() },
		json: fixed(`{"plan":"pro","share_weight":2}`)}},
	// A fresh invitation of B's member per case, so a body the server
	// accepts is redeemed and its key name echoed.
	"POST /v1/invitations/redeem": {{json: func(w *hostileWorld) string {
		return fmt.Sprintf(`{"token":%q,"name":"k"}`, w.invitationB())
	}}},
	"POST /v1/console/session": {{json: func(w *hostileWorld) string { return fmt.Sprintf(`{"api_key":%q}`, w.f.keyB) }}},
	"POST /v1/api-keys":        {{json: fixed(`{"name":"k"}`)}},
	"POST /v1/pools":           {{json: fixed(fullPool)}},
	"PATCH /v1/pools/:id":      {{path: ownPath("/v1/pools/", kindPool), json: fixed(fullPool)}},
	"POST /v1/pools/:id/plan":  {{path: func(w *hostileWorld) string { return ownPath("/v1/pools/", kindPool)(w) + "/plan" }, json: fixed(fullPool), echoless: true}},
}

// rawFieldTypes says what the json.RawMessage fields of request bodies
// hold, by field name, so their text fields are poisoned too.
var rawFieldTypes = map[string]reflect.Type{"spec": reflect.TypeFor[encodespec.Spec]()}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// textFields lists the text leaves of a request type as paths: "input.url",
// "events[0]", "spec.renditions[0].name"; "metadata.*" for the values of a
// map and "metadata{key}" for its keys. opaque lists json.RawMessage
// fields rawFieldTypes does not describe.
func textFields(t reflect.Type, path string, out, opaque *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[json.RawMessage]() {
		name := path[strings.LastIndexAny(path, ".")+1:]
		rt, ok := rawFieldTypes[name]
		if !ok {
			*opaque = append(*opaque, path)
			return
		}
		textFields(rt, path, out, opaque)
		return
	}
	if t.Kind() != reflect.String && reflect.PointerTo(t).Implements(textUnmarshaler) {
		*out = append(*out, path) // uuid.UUID and friends travel as text
		return
	}
	join := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	switch t.Kind() {
	case reflect.String:
		*out = append(*out, path)
	case reflect.Struct:
		for i := range t.NumField() {
			fld := t.Field(i)
			if !fld.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(fld.Tag.Get("json"), ",")
			switch {
			case name == "-":
				continue
			case fld.Anonymous && name == "":
				textFields(fld.Type, path, out, opaque)
				continue
			case name == "":
				name = fld.Name
			}
			textFields(fld.Type, join(name), out, opaque)
		}
	case reflect.Slice, reflect.Array:
		textFields(t.Elem(), path+"[0]", out, opaque)
	case reflect.Map:
		*out = append(*out, path+"{key}")
		textFields(t.Elem(), path+".*", out, opaque)
	}
}

// step is one segment of a text field path.
type step struct {
	key   string // object member; "*" for any key of a map
	index bool   // array element 0
	mkey  bool   // the key of a map entry (the map itself is the step before)
}

func parseSteps(path string) []step {
	var out []step
	for _, part := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if base, ok := strings.CutSuffix(name, "{key}"); ok {
			out = append(out, step{key: base}, step{mkey: true})
			continue
		}
		out = append(out, step{key: name})
		for rest != "" {
			out = append(out, step{index: true})
			_, rest, _ = strings.Cut(rest, "[")
		}
	}
	return out
}

// poisonSite is where one text field sits in a decoded body.
type poisonSite struct {
	container any    // map[string]any or []any holding the text
	key       string // member name (objects) or map key
	mapKey    bool   // the text is the key itself
	field     string // the field path a 422 must name
	dupable   bool   // the text is an object member's value: it can be given twice
}

// locate finds path in doc, or reports that doc does not set it.
func locate(doc any, steps []step) (poisonSite, bool) {
	var parts []string
	cur := doc
	for i, s := range steps {
		last := i == len(steps)-1
		switch {
		case s.mkey:
			m, ok := cur.(map[string]any)
			if !ok || len(m) == 0 {
				return poisonSite{}, false
			}
			keys := sortedKeys(m)
			return poisonSite{container: m, key: keys[0], mapKey: true, field: strings.Join(parts, ".")}, true
		case s.index:
			arr, ok := cur.([]any)
			if !ok || len(arr) == 0 {
				return poisonSite{}, false
			}
			parts[len(parts)-1] += "[0]"
			if last {
				_, isText := arr[0].(string)
				return poisonSite{container: arr, key: "0", field: strings.Join(parts, ".")}, isText
			}
			cur = arr[0]
		default:
			m, ok := cur.(map[string]any)
			if !ok {
				return poisonSite{}, false
			}
			key := s.key
			if key == "*" {
				if len(m) == 0 {
					return poisonSite{}, false
				}
				key = sortedKeys(m)[0]
			}
			v, ok := m[key]
			if !ok {
				return poisonSite{}, false
			}
			parts = append(parts, key)
			if last {
				_, isText := v.(string)
				return poisonSite{container: m, key: key, field: strings.Join(parts, "."), dupable: true}, isText
			}
			cur = v
		}
	}
	return poisonSite{}, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// textPoison turns a text (its JSON-escaped content, without quotes) into
// the poisoned JSON token that replaces it. name is the member name when
// the text is an object member's value (for duplicates).
type textPoison struct {
	name  string
	token func(escaped, member string) string
	// dup poisons only texts that are object members' values.
	dup bool
	// verbatim poisons are valid text: a field may refuse them (422 naming
	// it) or store them, and then the answer shows them exactly as sent
	// (design note 0010: stored as sent or refused, never rewritten),
	// except in the fields of mustRefuse.
	verbatim bool
	suffix   string // what a verbatim poison appends to the text
}

// mustRefuse are the fields that refuse even valid text that can deceive
// a reader (bidi overrides and other format characters): a file name is
// shown and saved as a name (design note 0010).
var mustRefuse = map[string]bool{"POST /v1/assets filename": true}

var textPoisons = []textPoison{
	{name: "NUL byte", token: func(e, _ string) string { return `"` + e + "\x00" + `"` }},
	{name: `escaped NUL \u0000`, token: func(e, _ string) string { return `"` + e + `\u0000"` }},
	{name: `lone high surrogate \ud800`, token: func(e, _ string) string { return `"` + e + `\ud800"` }},
	{name: `lone low surrogate \udfff`, token: func(e, _ string) string { return `"` + e + `\udfff"` }},
	{name: "invalid UTF-8", token: func(e, _ string) string { return `"` + e + "\xff\xfe" + `"` }},
	{name: "overlong UTF-8 slash", token: func(e, _ string) string { return `"` + e + "\xc0\xaf" + `"` }},
	{name: "bidi override U+202E", verbatim: true, suffix: "\u202e", token: func(e, _ string) string { return `"` + e + "\u202e" + `"` }},
	{name: "duplicate key", dup: true, token: func(e, member string) string {
		return `"` + e + `",` + strconv.Quote(member) + `:"` + e + `"`
	}},
}

const poisonMarker = "hostile-poison-marker"

// poisoned returns body with the text at site replaced by the poison's
// token. It works on the decoded body (doc, which it restores) so the
// JSON around the poison stays exactly as json.Marshal writes it.
func poisoned(t *testing.T, doc any, site poisonSite, p textPoison) []byte {
	t.Helper()
	var orig string
	switch c := site.container.(type) {
	case map[string]any:
		if site.mapKey {
			orig = site.key
			v := c[orig]
			delete(c, orig)
			c[poisonMarker] = v
			defer func() { delete(c, poisonMarker); c[orig] = v }()
		} else {
			orig = c[site.key].(string)
			c[site.key] = poisonMarker
			defer func() { c[site.key] = orig }()
		}
	case []any:
		orig = c[0].(string)
		c[0] = poisonMarker
		defer func() { c[0] = orig }()
	}
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	quoted, err := json.Marshal(orig)
	require.NoError(t, err)
	escaped := string(quoted[1 : len(quoted)-1])
	token := p.token(escaped, site.key)
	require.Equal(t, 1, bytes.Count(raw, []byte(`"`+poisonMarker+`"`)))
	return bytes.Replace(raw, []byte(`"`+poisonMarker+`"`), []byte(token), 1)
}

func decodeBody(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var doc any
	require.NoError(t, dec.Decode(&doc), "%s", s)
	return doc
}

// bodyRoutes lists the routes whose table entry has a request body type.
func bodyRoutes(f *fixture) map[string]Route {
	out := map[string]Route{}
	for _, r := range append(f.srv.Routes(), f.srv.publicRoutes()...) {
		if r.Body != nil {
			out[r.Method+" "+r.Path] = r
		}
	}
	return out
}

// TestHostileTextCoversEveryTextField: every route with a request body has
// textBodies, and they set every text field of the body's type, so
// TestHostileText poisons each one. A new route or field fails here until
// its text is covered.
func TestHostileTextCoversEveryTextField(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := &hostileWorld{f: f, a: map[objKind]string{}, b: map[objKind]string{}}
	routes := bodyRoutes(f)
	inv := newInventory(t, "contracts")
	for k, r := range routes {
		bodies, ok := textBodies[k]
		if !assert.True(t, ok, "route %s takes a body: add valid bodies of org B to textBodies in apiserver/hostile_contract_test.go", k) {
			continue
		}
		var fields, opaque []string
		textFields(reflect.TypeOf(r.Body), "", &fields, &opaque)
		assert.Empty(t, opaque, "%s: say in rawFieldTypes which type these json.RawMessage fields hold", k)
		inv.note("text fields of "+k, len(fields))
		for _, field := range fields {
			set := slices.ContainsFunc(bodies, func(b textBody) bool {
				_, ok := locate(decodeBody(t, b.json(w)), parseSteps(field))
				return ok
			})
			assert.True(t, set, "%s: no body in textBodies sets the text field %s; add one", k, field)
		}
	}
	for k := range textBodies {
		assert.Contains(t, routes, k, "textBodies names %s, which takes no body or is not registered", k)
	}
}

// TestHostileText: every text field of every route's body, one at a time,
// carries each of textPoisons inside an otherwise valid request of org B.
// Each answers 422 problem+json naming that field (a map's key: the map),
// never 5xx; a verbatim poison may instead be stored, and then the answer
// shows it exactly as sent.
func TestHostileText(t *testing.T) {
	t.Parallel()
	w := newHostileWorld(t)
	f := w.f
	w.t = t
	w.manifestB = w.uploadManifest(t, "s3://"+f.objects.Bucket()+"/orgs/"+f.orgB.ID.String()+"/library-own-b/in.mp4")
	inv := newInventory(t, "contracts")
	routes := bodyRoutes(f)
	keys := make([]string, 0, len(routes))
	for k := range routes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		method, path, _ := strings.Cut(k, " ")
		var fields, opaque []string
		textFields(reflect.TypeOf(routes[k].Body), "", &fields, &opaque)
		done := map[string]bool{} // a field set by several bodies is poisoned once
		for _, b := range textBodies[k] {
			target := path
			if b.path != nil {
				target = b.path(w)
			}
			for _, field := range fields {
				doc := decodeBody(t, b.json(w))
				site, ok := locate(doc, parseSteps(field))
				if !ok || done[field] {
					continue
				}
				done[field] = true
				for _, p := range textPoisons {
					if p.dup && !site.dupable {
						continue
					}
					t.Run(k+" "+site.field+" "+p.name, func(t *testing.T) {
						parent := w.t
						w.t = t
						defer func() { w.t = parent }()
						inv.add("text poison: " + p.name)
						doc := decodeBody(t, b.json(w)) // fresh ids and keys per case
						site, ok := locate(doc, parseSteps(field))
						require.True(t, ok)
						body := poisoned(t, doc, site, p)
						key := f.keyB
						if b.role != "" {
							key = w.keysB[b.role]
						}
						r := f.raw(t, method, target, key, body, nil)
						assert.Less(t, r.Status, 500, "5xx: %s", r.Body)
						if p.verbatim && !mustRefuse[k+" "+site.field] && r.Status < 300 {
							if !b.echoless {
								assert.Contains(t, string(r.Body), siteText(site)+p.suffix, "stored, so shown exactly as sent")
							}
							return
						}
						require.Equal(t, http.StatusUnprocessableEntity, r.Status, "body %q: %s", body, r.Body)
						got := r.fields(t)
						named := slices.ContainsFunc(got, func(g string) bool {
							return g == site.field || (site.mapKey && strings.HasPrefix(g, site.field))
						})
						assert.True(t, named, "the problem names %s, got %v", site.field, got)
					})
				}
			}
		}
	}
}

// uploadManifest stores a one-line JSON Lines manifest as an asset of org B.
func (w *hostileWorld) uploadManifest(t *testing.T, input string) string {
	t.Helper()
	doc, err := json.Marshal(map[string]string{"input": input})
	require.NoError(t, err)
	doc = append(doc, '\n')
	var a apiv1.Asset
	w.f.mustDo(t, 201, "POST", "/v1/assets", w.f.keyB, map[string]any{"filename": "m.jsonl", "size_bytes": len(doc)}, &a)
	st, err := w.f.store.GetAsset(t.Context(), w.f.orgB.ID, uuid.MustParse(a.ID))
	require.NoError(t, err)
	require.NoError(t, w.f.objects.Put(t.Context(), st.ObjectKey, bytes.NewReader(doc)))
	return a.ID
}

// TestHostileMemberIdentity: people belong to several organizations, so B
// may add one of A's members by email. B then sees only what B gave (not
// the display name A's member has), and the name B gives does not change
// the name A shows. Fails until the per-organization member identity fix
// merges.
func TestHostileMemberIdentity(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	inv := newInventory(t, "contracts")
	keyA := f.keys[auth.Owner]
	for _, m := range []map[string]any{
		{"email": "ada@a.example", "name": "Ada Secret-A", "role": "viewer"},
		{"email": "grace@a.example", "name": "Grace Secret-A", "role": "viewer"},
	} {
		f.mustDo(t, 201, "POST", "/v1/members", keyA, m, nil)
	}
	nameIn := func(t *testing.T, key, email string) string {
		t.Helper()
		var ms apiv1.Page[apiv1.Member]
		f.mustDo(t, 200, "GET", "/v1/members", key, nil, &ms)
		for _, m := range ms.Items {
			if m.Email == email {
				return m.Name
			}
		}
		t.Fatalf("%s is not listed", email)
		return ""
	}

	t.Run("added without a name", func(t *testing.T) {
		inv.add("member identity across organizations")
		r := f.do(t, "POST", "/v1/members", f.keyB, map[string]any{"email": "ada@a.example", "role": "viewer"})
		require.Equal(t, 201, r.Status, "%s", r.Body)
		assert.NotContains(t, string(r.Body), "Secret-A", "B's answer shows the name A's member has")
	})
	t.Run("listed", func(t *testing.T) {
		inv.add("member identity across organizations")
		r := f.do(t, "GET", "/v1/members", f.keyB, nil)
		require.Equal(t, 200, r.Status)
		assert.NotContains(t, string(r.Body), "Secret-A", "B's member list shows the name A's member has")
	})
	t.Run("renamed by B", func(t *testing.T) {
		inv.add("member identity across organizations")
		f.mustDo(t, 201, "POST", "/v1/members", f.keyB, map[string]any{"email": "grace@a.example", "name": "Renamed by B", "role": "viewer"}, nil)
		assert.Equal(t, "Grace Secret-A", nameIn(t, keyA, "grace@a.example"), "B's name for the person changed what A shows")
		assert.Equal(t, "Renamed by B", nameIn(t, f.keyB, "grace@a.example"))
	})
}

// siteText is the text at site, as the body had it before its poison.
func siteText(site poisonSite) string {
	switch c := site.container.(type) {
	case map[string]any:
		if site.mapKey {
			return site.key
		}
		return c[site.key].(string)
	case []any:
		return c[0].(string)
	}
	return ""
}

// invitationB is the token of a fresh invitation of B's member, or a
// well-formed token that matches none when the world has no objects (the
// coverage test only reads the body's shape).
func (w *hostileWorld) invitationB() string {
	if w.b[kindMember] == "" {
		return "mfi_aaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	}
	var inv apiv1.InvitationCreated
	w.f.mustDo(w.t, 201, "POST", "/v1/members/"+w.b[kindMember]+"/invitations", w.f.keyB, map[string]any{}, &inv)
	return inv.Token
}
