package dispatcher

import (
	"context"
	"encoding/json"
	"net/url"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

// The hostile-worker suite: what a compromised encode pod can try against
// the coordinator with the credentials it really has (its pool's worker
// token and the claim tokens it was handed), and what it must get back.
// Each test logs its case counts as "hostile inventory" lines; the lead
// copies them into docs/security.md.

// tenantPools is two organizations on one coordinator, each with a
// dedicated pool and a worker (pod credentials) for it.
type tenantPools struct {
	e            *env
	in           *instance
	orgB         store.Organization
	poolA, poolB store.Pool
	workA, workB *worker
}

func newTenantPools(t *testing.T) *tenantPools {
	t.Helper()
	e := newEnv(t)
	in := e.start(Config{})
	b, err := e.store.BootstrapOrg(t.Context(), "Org B", "owner@b.example", auth.Owner)
	require.NoError(t, err)
	set := store.DefaultPoolSettings()
	set.Name = "b"
	poolB, err := e.store.CreatePool(t.Context(), b.Org.ID, set)
	require.NoError(t, err)
	poolA := e.pool("a")
	return &tenantPools{
		e: e, in: in, orgB: b.Org, poolA: poolA, poolB: poolB,
		workA: e.worker(in.addr, poolA.ID), workB: e.worker(in.addr, poolB.ID),
	}
}

// submitB queues one job of org B in pool B.
func (tp *tenantPools) submitB(t *testing.T) uuid.UUID {
	t.Helper()
	u := "https://media.example.com/b.mp4"
	j, _, err := tp.e.store.CreateJob(t.Context(), store.NewJob{OrgID: tp.orgB.ID, PoolID: tp.poolB.ID, Lane: "live", MaxAttempts: 3,
		InputURL: &u, Spec: testSpec, Metadata: json.RawMessage(`{}`)})
	require.NoError(t, err)
	tp.e.push(tp.poolB.ID, j.ID)
	return j.ID
}

// jobSnapshot is the state of one job a refused call must leave alone,
// wherever the job's organization is.
func (tp *tenantPools) jobSnapshot(t *testing.T, id uuid.UUID) string {
	t.Helper()
	var doc string
	require.NoError(t, tp.e.db.QueryRow(t.Context(), `
		SELECT jsonb_build_object('job', to_jsonb(j), 'events', (SELECT count(*) FROM job_events WHERE job_id = j.id),
			'workers', (SELECT jsonb_agg(to_jsonb(w) ORDER BY w.id) FROM workers w))::text
		FROM jobs j WHERE j.id = $1`, id).Scan(&doc))
	return doc
}

// asPool is a worker context for pool with token, and a claim token if given.
func asPool(ctx context.Context, pool, token, claimToken string) context.Context {
	kv := []string{"authorization", "Bearer " + token, coordinatorv1.MetadataPool, pool}
	if claimToken != "" {
		kv = append(kv, coordinatorv1.MetadataClaimToken, claimToken)
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// inventory counts the cases of one suite by category and logs them in the
// table format of docs/security.md.
type inventory struct {
	t      *testing.T
	suite  string
	order  []string
	counts map[string]int
}

func newInventory(t *testing.T, suite string) *inventory {
	inv := &inventory{t: t, suite: suite, counts: map[string]int{}}
	t.Cleanup(inv.log)
	return inv
}

func (inv *inventory) add(category string) {
	if _, ok := inv.counts[category]; !ok {
		inv.order = append(inv.order, category)
	}
	inv.counts[category]++
}

func (inv *inventory) log() {
	total := 0
	for _, c := range inv.order {
		inv.t.Logf("hostile inventory | %s | %s | %d |", inv.suite, c, inv.counts[c])
		total += inv.counts[c]
	}
	inv.t.Logf("hostile inventory | %s | %s cases | %d |", inv.suite, inv.t.Name(), total)
}

// TestHostileWorkerCrossPool: pool B's worker token never reaches a job of
// pool A (another organization's), whatever claim token or pool it sends:
// NotFound when it names its own pool, PermissionDenied when it claims to
// be pool A. Claiming names only the token's pool, and never hands out
// pool A's queued job.
func TestHostileWorkerCrossPool(t *testing.T) {
	t.Parallel()
	tp := newTenantPools(t)
	inv := newInventory(t, "coordinator")
	e := tp.e
	idA := e.submit(tp.poolA.ID, 1)[0]
	heldA := tp.workA.mustClaim(t, "pod-a")
	require.Equal(t, idA.String(), heldA.GetId())
	tp.submitB(t)
	heldB := tp.workB.mustClaim(t, "pod-b")
	queuedA := e.submit(tp.poolA.ID, 1)[0]
	tokB := tp.workB.token

	tests := []struct {
		name   string
		ctx    func(context.Context) context.Context
		target uuid.UUID
		want   codes.Code
	}{
		{"pool B token, A's job, A's claim token", func(ctx context.Context) context.Context {
			return asPool(ctx, tp.poolB.ID, tokB, heldA.GetClaimToken())
		}, idA, codes.NotFound},
		{"pool B token, A's job, B's claim token", func(ctx context.Context) context.Context {
			return asPool(ctx, tp.poolB.ID, tokB, heldB.GetClaimToken())
		}, idA, codes.NotFound},
		{"pool B token claiming to be pool A, A's claim token", func(ctx context.Context) context.Context {
			return asPool(ctx, tp.poolA.ID, tokB, heldA.GetClaimToken())
		}, idA, codes.PermissionDenied},
		{"pool B token claiming to be pool A, B's claim token", func(ctx context.Context) context.Context {
			return asPool(ctx, tp.poolA.ID, tokB, heldB.GetClaimToken())
		}, idA, codes.PermissionDenied},
		{"pool B token sent twice with pool A first", func(ctx context.Context) context.Context {
			ctx = metadata.AppendToOutgoingContext(ctx, coordinatorv1.MetadataPool, tp.poolA.ID)
			return asPool(ctx, tp.poolB.ID, tokB, heldA.GetClaimToken())
		}, idA, codes.PermissionDenied},
		{"pool B token, A's queued job never claimed", func(ctx context.Context) context.Context {
			return asPool(ctx, tp.poolB.ID, tokB, heldA.GetClaimToken())
		}, queuedA, codes.NotFound},
	}
	for _, tt := range tests {
		for _, method := range jobCalls {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				// Not parallel: the cases share the held jobs.
				inv.add("cross-pool job calls")
				before := tp.jobSnapshot(t, tt.target)
				err := call(tt.ctx(t.Context()), tp.workB.client, method, tp.poolB.ID, tt.target.String())
				assert.Equal(t, tt.want, status.Code(err), "%v", err)
				assert.Empty(t, cmp.Diff(before, tp.jobSnapshot(t, tt.target)), "nothing changed")
			})
		}
	}

	claims := []struct {
		name string
		ctx  func(context.Context) context.Context
		pool string
		want codes.Code
	}{
		{"request names pool A", func(ctx context.Context) context.Context { return asPool(ctx, tp.poolB.ID, tokB, "") }, tp.poolA.ID, codes.PermissionDenied},
		{"metadata names pool A", func(ctx context.Context) context.Context { return asPool(ctx, tp.poolA.ID, tokB, "") }, tp.poolA.ID, codes.PermissionDenied},
		{"metadata names the shared pool", func(ctx context.Context) context.Context {
			return asPool(ctx, store.DefaultPoolID, tokB, "")
		}, store.DefaultPoolID, codes.PermissionDenied},
		{"pool A's token under another pool name", func(ctx context.Context) context.Context {
			return asPool(ctx, tp.poolB.ID, tp.workA.token, "")
		}, tp.poolB.ID, codes.PermissionDenied},
	}
	for _, tt := range claims {
		t.Run("Claim/"+tt.name, func(t *testing.T) {
			inv.add("cross-pool claims")
			before := tp.jobSnapshot(t, queuedA)
			_, err := tp.workB.client.Claim(tt.ctx(t.Context()), &coordinatorv1.ClaimRequest{Pool: tt.pool, Pod: "pod-intruder"})
			assert.Equal(t, tt.want, status.Code(err), "%v", err)
			assert.Empty(t, cmp.Diff(before, tp.jobSnapshot(t, queuedA)))
		})
	}

	t.Run("Claim/own pool never yields pool A's job", func(t *testing.T) {
		inv.add("cross-pool claims")
		got, err := tp.workB.claim(t.Context(), "pod-b2", 0)
		require.NoError(t, err)
		assert.Nil(t, got, "pool B is empty")
		assert.Equal(t, int64(1), e.queueLen(tp.poolA.ID), "A's queued job is still waiting in pool A")
	})

	// The rightful holders still finish.
	require.NoError(t, tp.workA.complete(t.Context(), heldA))
	require.NoError(t, tp.workB.complete(t.Context(), heldB))
}

// TestHostileWorkerStaleClaim: a pod keeps the claim token of a job that
// left it — evicted, its lease lapsed, or preempted — and the job was
// claimed again by another pod; or it uses the token of another job it
// holds. Every call with such a token is PermissionDenied and changes
// nothing, and the current holder still finishes the job. A finished job's
// token is FailedPrecondition and presigns nothing.
func TestHostileWorkerStaleClaim(t *testing.T) {
	t.Parallel()
	tp := newTenantPools(t)
	inv := newInventory(t, "coordinator")
	e, w, pool := tp.e, tp.workA, tp.poolA.ID

	// requeue takes a job away from the pod holding it; the job ends up
	// queued and pushed.
	requeues := []struct {
		name    string
		requeue func(t *testing.T, held *coordinatorv1.Job, pod string)
	}{
		{"evicted", func(t *testing.T, held *coordinatorv1.Job, pod string) {
			_, jobs, err := e.store.EvictWorker(t.Context(), pod)
			require.NoError(t, err)
			require.Len(t, jobs, 1)
			e.push(pool, jobs[0].ID)
		}},
		{"lease expired", func(t *testing.T, held *coordinatorv1.Job, pod string) {
			id := uuid.MustParse(held.GetId())
			_, err := e.db.Exec(t.Context(), `UPDATE jobs SET lease_expires_at = now() - interval '1 minute' WHERE id = $1`, id)
			require.NoError(t, err)
			moved, err := e.store.RecoverStaleJobs(t.Context(), store.FailPolicy{Now: time.Now(), Backoff: func(int) time.Duration { return 0 }}, 10)
			require.NoError(t, err)
			require.Len(t, moved, 1)
			require.Equal(t, store.OutcomeRetryScheduled, moved[0].Outcome)
			promoted, err := e.store.PromoteRetries(t.Context(), []uuid.UUID{id}, time.Now().Add(time.Second))
			require.NoError(t, err)
			require.Len(t, promoted, 1)
			e.push(pool, id)
		}},
		{"preempted", func(t *testing.T, held *coordinatorv1.Job, pod string) {
			resp, err := w.fail(t.Context(), held, coordinatorv1.PreemptedError, true)
			require.NoError(t, err)
			require.Equal(t, store.OutcomeRequeued, resp.GetOutcome())
		}},
	}
	for i, rq := range requeues {
		old, cur := "pod-old-"+strconv.Itoa(i), "pod-new-"+strconv.Itoa(i)
		id := e.submit(pool, 1)[0]
		stale := w.mustClaim(t, old)
		require.Equal(t, id.String(), stale.GetId())
		rq.requeue(t, stale, old)

		// Before anyone claims it again: the old token holds nothing.
		for _, method := range jobCalls {
			t.Run(rq.name+"/not yet claimed again/"+method, func(t *testing.T) {
				inv.add("stale claim token")
				before := tp.jobSnapshot(t, id)
				err := w.call(t.Context(), method, id.String(), stale.GetClaimToken())
				assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
				assert.Empty(t, cmp.Diff(before, tp.jobSnapshot(t, id)))
			})
		}

		again := w.mustClaim(t, cur)
		require.Equal(t, id.String(), again.GetId())
		require.NotEqual(t, stale.GetClaimToken(), again.GetClaimToken())
		for _, method := range jobCalls {
			t.Run(rq.name+"/claimed by another pod/"+method, func(t *testing.T) {
				inv.add("stale claim token")
				before := tp.jobSnapshot(t, id)
				err := w.call(t.Context(), method, id.String(), stale.GetClaimToken())
				assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
				assert.Empty(t, cmp.Diff(before, tp.jobSnapshot(t, id)))
			})
		}
		require.NoError(t, w.complete(t.Context(), again), "the current holder finishes")
	}

	// Two jobs held by two pods of the pool: neither token opens the other.
	ids := e.submit(pool, 2)
	x := w.mustClaim(t, "pod-x")
	y := w.mustClaim(t, "pod-y")
	require.ElementsMatch(t, []string{ids[0].String(), ids[1].String()}, []string{x.GetId(), y.GetId()})
	for _, pair := range [][2]*coordinatorv1.Job{{x, y}, {y, x}} {
		for _, method := range jobCalls {
			t.Run("another job's claim token/"+method, func(t *testing.T) {
				inv.add("another job's claim token")
				target := uuid.MustParse(pair[1].GetId())
				before := tp.jobSnapshot(t, target)
				err := w.call(t.Context(), method, pair[1].GetId(), pair[0].GetClaimToken())
				assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
				assert.Empty(t, cmp.Diff(before, tp.jobSnapshot(t, target)))
			})
		}
	}
	require.NoError(t, w.complete(t.Context(), x))

	// x is finished: its token is of no more use.
	for _, method := range jobCalls {
		t.Run("finished job's claim token/"+method, func(t *testing.T) {
			inv.add("finished job's claim token")
			target := uuid.MustParse(x.GetId())
			before := tp.jobSnapshot(t, target)
			err := w.call(t.Context(), method, x.GetId(), x.GetClaimToken())
			assert.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
			assert.Empty(t, cmp.Diff(before, tp.jobSnapshot(t, target)))
		})
	}
	require.NoError(t, w.complete(t.Context(), y))
}

// hostileOutputNames are output names a pod may send to PresignOutputs and
// Complete that must be refused with InvalidArgument: each could place a
// file outside orgs/{org}/jobs/{job}/outputs/ once joined to that prefix,
// or is not a plain relative name.
var hostileOutputNames = []struct{ name, value string }{
	{"parent directory", "../x.mp4"},
	{"parent of the job", "../../x.mp4"},
	{"another job of the org", "../../" + uuid.NewString() + "/outputs/x.mp4"},
	{"another org", "../../../../" + uuid.NewString() + "/jobs/" + uuid.NewString() + "/outputs/x.mp4"},
	{"parent inside the path", "720p/../../x.mp4"},
	{"parent at the end", "720p/.."},
	{"bare dot-dot", ".."},
	{"bare dot", "."},
	{"dot segment", "./x.mp4"},
	{"dot segment inside", "720p/./x.mp4"},
	{"absolute path", "/etc/passwd"},
	{"absolute path to another org", "/orgs/" + uuid.NewString() + "/jobs/x/outputs/x.mp4"},
	{"backslash traversal", `..\..\x.mp4`},
	{"backslash separator", `720p\x.mp4`},
	{"windows drive", `C:\x.mp4`},
	{"NUL", "x.mp4\x00.jpg"},
	{"NUL alone", "\x00"},
	{"newline", "x.mp4\n"},
	{"empty", ""},
	{"trailing slash", "720p/"},
	{"double slash", "720p//x.mp4"},
	{"leading space", " x.mp4"},
	{"percent-encoded parent", "%2e%2e/x.mp4"},
	{"percent-encoded slash", "..%2fx.mp4"},
	{"fullwidth dots", "\uff0e\uff0e/x.mp4"},
	{"hidden file", ".ssh/authorized_keys"},
	{"query string", "x.mp4?versionId=1"},
	{"url", "https://evil.example/x.mp4"},
	{"too long", strings.Repeat("a", 256)},
	{"too long after a directory", "720p/" + strings.Repeat("a", 251)},
}

// TestHostileOutputNames: a pod holding a job asks to upload, or reports,
// files whose names escape the job's output prefix. PresignOutputs and
// Complete refuse every such name (InvalidArgument, nothing presigned,
// nothing recorded), also when it hides among good names, and refuse a
// name listed twice. The names they accept are presigned only under
// orgs/{org}/jobs/{job}/outputs/ of the deployment's bucket.
func TestHostileOutputNames(t *testing.T) {
	t.Parallel()
	tp := newTenantPools(t)
	inv := newInventory(t, "coordinator")
	e, w := tp.e, tp.workA
	id := e.submit(tp.poolA.ID, 1)[0]
	held := w.mustClaim(t, "pod-1")
	tok := held.GetClaimToken()
	prefix := "orgs/" + e.org.ID.String() + "/jobs/" + id.String() + "/outputs/"

	presign := func(ctx context.Context, names ...string) (*coordinatorv1.PresignOutputsResponse, error) {
		files := make([]*coordinatorv1.OutputFile, len(names))
		for i, n := range names {
			files[i] = &coordinatorv1.OutputFile{Name: n, ContentType: "video/mp4"}
		}
		return w.client.PresignOutputs(w.ctx(ctx, tok), &coordinatorv1.PresignOutputsRequest{JobId: held.GetId(), Files: files})
	}
	complete := func(ctx context.Context, names ...string) error {
		outs := make([]*coordinatorv1.Output, len(names))
		for i, n := range names {
			outs[i] = &coordinatorv1.Output{Name: n, Kind: "video", SizeBytes: 1, ContentType: "video/mp4"}
		}
		_, err := w.client.Complete(w.ctx(ctx, tok), &coordinatorv1.CompleteRequest{JobId: held.GetId(), Outputs: outs,
			Usage: &coordinatorv1.Usage{EncodeSeconds: 1}})
		return err
	}

	before := tp.jobSnapshot(t, id)
	for _, tt := range hostileOutputNames {
		t.Run("PresignOutputs/"+tt.name, func(t *testing.T) {
			inv.add("output names refused")
			resp, err := presign(t.Context(), tt.value)
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			assert.Empty(t, resp.GetUploads())
		})
		t.Run("PresignOutputs among good names/"+tt.name, func(t *testing.T) {
			inv.add("output names refused")
			resp, err := presign(t.Context(), "out.mp4", tt.value, "720p/index.m3u8")
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			assert.Empty(t, resp.GetUploads(), "nothing presigned when one name is bad")
		})
		t.Run("Complete/"+tt.name, func(t *testing.T) {
			inv.add("output names refused")
			err := complete(t.Context(), tt.value)
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		})
	}
	duplicates := []struct {
		name  string
		names []string
	}{
		{"same name twice", []string{"out.mp4", "out.mp4"}},
		{"same name twice among others", []string{"a.mp4", "720p/index.m3u8", "b.mp4", "720p/index.m3u8"}},
	}
	for _, tt := range duplicates {
		t.Run("PresignOutputs duplicate/"+tt.name, func(t *testing.T) {
			inv.add("duplicate output names refused")
			resp, err := presign(t.Context(), tt.names...)
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			assert.Empty(t, resp.GetUploads())
		})
		t.Run("Complete duplicate/"+tt.name, func(t *testing.T) {
			inv.add("duplicate output names refused")
			assert.Equal(t, codes.InvalidArgument, status.Code(complete(t.Context(), tt.names...)))
		})
	}
	assert.Empty(t, cmp.Diff(before, tp.jobSnapshot(t, id)), "no refused call changed the job")

	// The names a pod may use are presigned under the job's prefix only.
	good := []string{"out.mp4", "720p/index.m3u8", "720p/seg_00001.m4s", "thumbs/thumb_00001.jpg", "a.b-c_d/e", strings.Repeat("a", 255)}
	resp, err := presign(t.Context(), good...)
	require.NoError(t, err)
	require.Len(t, resp.GetUploads(), len(good))
	bucketPath := "/" + e.objects.Bucket() + "/"
	for i, up := range resp.GetUploads() {
		inv.add("accepted names presigned under the job's prefix")
		u, err := url.Parse(up.GetUrl())
		require.NoError(t, err)
		assert.Equal(t, good[i], up.GetName())
		assert.Equal(t, bucketPath+prefix+good[i], u.Path, "the upload lands under the job's output prefix")
		assert.Equal(t, path.Clean(u.Path), u.Path)
	}
	for _, n := range good {
		require.NoError(t, e.objects.Put(t.Context(), prefix+n, strings.NewReader("x")))
	}
	require.NoError(t, complete(t.Context(), good...))
	var recorded []outputRecord
	require.NoError(t, json.Unmarshal(e.job(id).Outputs, &recorded))
	require.Len(t, recorded, len(good))
	for _, r := range recorded {
		assert.Equal(t, prefix+r.Name, r.Key)
	}
}
