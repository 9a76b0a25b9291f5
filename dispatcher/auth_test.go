package dispatcher

import (
	"context"
	"fmt"
	"testing"

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

// jobCalls are the calls a worker makes about a held job; each sends the
// given claim token ("" = none).
var jobCalls = []string{"Heartbeat", "PresignOutputs", "Complete", "CompleteThenClaim", "Reports", "Fail"}

func (w *worker) call(ctx context.Context, method, jobID, claimToken string) error {
	return call(w.ctx(ctx, claimToken), w.client, method, w.pool, jobID)
}

// call makes one coordinator call with whatever metadata ctx carries.
func call(ctx context.Context, client coordinatorv1.CoordinatorClient, method, pool, jobID string) error {
	var err error
	switch method {
	case "Claim":
		_, err = client.Claim(ctx, &coordinatorv1.ClaimRequest{Pool: pool, Pod: "pod-intruder"})
	case "Heartbeat":
		_, err = client.Heartbeat(ctx, &coordinatorv1.HeartbeatRequest{JobId: jobID, Progress: 0.9})
	case "PresignOutputs":
		_, err = client.PresignOutputs(ctx, &coordinatorv1.PresignOutputsRequest{JobId: jobID,
			Files: []*coordinatorv1.OutputFile{{Name: "out.mp4", ContentType: "video/mp4"}}})
	case "Complete":
		_, err = client.Complete(ctx, &coordinatorv1.CompleteRequest{JobId: jobID})
	case "CompleteThenClaim":
		// No next claim: one that ran beside a refused completion would
		// be handed back (TestCompleteClaimsNext), not left untouched.
		_, err = completeThenClaim(ctx, client, &coordinatorv1.CompleteRequest{JobId: jobID})
	case "Reports":
		// The claim token goes in the report, not in the stream's
		// metadata.
		ctx, token := reportsMetadataWithoutClaimToken(ctx)
		_, err = reportAlone(ctx, client, token, &coordinatorv1.CompleteRequest{JobId: jobID})
	case "Fail":
		_, err = client.Fail(ctx, &coordinatorv1.FailRequest{JobId: jobID, Error: "boom", Retryable: false})
	default:
		panic("unknown method " + method)
	}
	return err
}

// reportsMetadataWithoutClaimToken is ctx without the claim token its
// outgoing metadata carries, and that token ("" for none): a report
// carries it in its message.
func reportsMetadataWithoutClaimToken(ctx context.Context) (context.Context, string) {
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	token := ""
	if v := md.Get(coordinatorv1.MetadataClaimToken); len(v) > 0 {
		token = v[0]
	}
	md.Delete(coordinatorv1.MetadataClaimToken)
	return metadata.NewOutgoingContext(ctx, md), token
}

// snapshot is everything a rejected call must leave alone.
type snapshot struct {
	Job     store.Job
	Events  int
	Workers int
	Queued  int64
}

func (e *env) snapshot(id uuid.UUID, pool string) snapshot {
	e.t.Helper()
	var events, workers int
	require.NoError(e.t, e.db.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM job_events WHERE job_id = $1), (SELECT count(*) FROM workers)`, id).
		Scan(&events, &workers))
	return snapshot{Job: e.job(id), Events: events, Workers: workers, Queued: e.queueLen(pool)}
}

// TestWorkerAuthentication: every call needs the pool's worker token for
// the pool it names; a refused call changes nothing.
func TestWorkerAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.start(Config{})
	other := e.pool("other")
	owner := e.worker(in.addr, store.DefaultPoolID)
	id := e.submit(store.DefaultPoolID, 2)[0]
	held := owner.mustClaim(t, "pod-1")
	require.Equal(t, id.String(), held.GetId())
	before := e.snapshot(id, store.DefaultPoolID)

	tests := []struct {
		name string
		ctx  func(context.Context) context.Context
		want codes.Code
	}{
		{"no credentials", func(ctx context.Context) context.Context { return ctx }, codes.Unauthenticated},
		{"token without pool", func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+owner.token, coordinatorv1.MetadataClaimToken, held.GetClaimToken())
		}, codes.Unauthenticated},
		{"pool without token", func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, coordinatorv1.MetadataPool, store.DefaultPoolID, coordinatorv1.MetadataClaimToken, held.GetClaimToken())
		}, codes.Unauthenticated},
		{"token not sent as bearer", func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, "authorization", owner.token, coordinatorv1.MetadataPool, store.DefaultPoolID, coordinatorv1.MetadataClaimToken, held.GetClaimToken())
		}, codes.Unauthenticated},
		{"wrong worker token", func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+auth.WorkerToken([]byte("another-secret-another-secret-0123456789"), store.DefaultPoolID),
				coordinatorv1.MetadataPool, store.DefaultPoolID, coordinatorv1.MetadataClaimToken, held.GetClaimToken())
		}, codes.PermissionDenied},
		{"token of another pool", func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+auth.WorkerToken(testSecret, other.ID),
				coordinatorv1.MetadataPool, store.DefaultPoolID, coordinatorv1.MetadataClaimToken, held.GetClaimToken())
		}, codes.PermissionDenied},
		{"malformed pool id", func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+owner.token, coordinatorv1.MetadataPool, "Default!", coordinatorv1.MetadataClaimToken, held.GetClaimToken())
		}, codes.PermissionDenied},
	}
	for _, tt := range tests {
		for _, method := range append([]string{"Claim"}, jobCalls...) {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				// Not parallel: the subtests share the held job and compare
				// it with the same snapshot.
				// The table builds the metadata itself.
				err := call(tt.ctx(t.Context()), owner.client, method, store.DefaultPoolID, held.GetId())
				assert.Equal(t, tt.want, status.Code(err), "%v", err)
				assert.Empty(t, cmp.Diff(before, e.snapshot(id, store.DefaultPoolID)), "nothing changed")
			})
		}
	}

	t.Run("claim naming another pool", func(t *testing.T) {
		_, err := owner.client.Claim(owner.ctx(t.Context(), ""), &coordinatorv1.ClaimRequest{Pool: other.ID, Pod: "pod-2"})
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		assert.Empty(t, cmp.Diff(before, e.snapshot(id, store.DefaultPoolID)))
	})

	// The rightful holder still can finish.
	require.NoError(t, owner.complete(t.Context(), held))
}

// TestClaimTokenAndPoolChecks: a worker that is authenticated for its pool
// still cannot touch a job of another pool (NotFound, even with that job's
// claim token) nor a job of its pool that it does not hold
// (PermissionDenied); the job is unchanged in every case.
func TestClaimTokenAndPoolChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.start(Config{})
	poolB := e.pool("b")
	wa := e.worker(in.addr, store.DefaultPoolID)
	wb := e.worker(in.addr, poolB.ID)
	idA := e.submit(store.DefaultPoolID, 1)[0]
	idB := e.submit(poolB.ID, 1)[0]
	jobA := wa.mustClaim(t, "pod-a")
	jobB := wb.mustClaim(t, "pod-b")
	queuedID := e.submit(store.DefaultPoolID, 1)[0]

	tests := []struct {
		name       string
		w          *worker
		id         uuid.UUID
		pool       string
		claimToken string
		want       codes.Code
	}{
		{"pool A worker on pool B job with its claim token", wa, idB, poolB.ID, jobB.GetClaimToken(), codes.NotFound},
		{"pool B worker on pool A job with its claim token", wb, idA, store.DefaultPoolID, jobA.GetClaimToken(), codes.NotFound},
		{"wrong claim token", wa, idA, store.DefaultPoolID, jobB.GetClaimToken(), codes.PermissionDenied},
		{"made-up claim token", wa, idA, store.DefaultPoolID, "not-the-token", codes.PermissionDenied},
		{"no claim token", wa, idA, store.DefaultPoolID, "", codes.Unauthenticated},
		{"queued job never claimed", wa, queuedID, store.DefaultPoolID, jobA.GetClaimToken(), codes.PermissionDenied},
		{"unknown job", wa, uuid.New(), store.DefaultPoolID, jobA.GetClaimToken(), codes.NotFound},
	}
	for _, tt := range tests {
		for _, method := range jobCalls {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				// Not parallel: the subtests share the held jobs.
				var before snapshot
				if tt.name != "unknown job" {
					before = e.snapshot(tt.id, tt.pool)
				}
				err := tt.w.call(t.Context(), method, tt.id.String(), tt.claimToken)
				assert.Equal(t, tt.want, status.Code(err), "%v", err)
				if tt.name != "unknown job" {
					assert.Empty(t, cmp.Diff(before, e.snapshot(tt.id, tt.pool)), "nothing changed")
				}
			})
		}
	}

	// Both holders still can finish.
	require.NoError(t, wa.complete(t.Context(), jobA))
	require.NoError(t, wb.complete(t.Context(), jobB))
	for _, id := range []uuid.UUID{idA, idB} {
		assert.Equal(t, store.JobCompleted, e.job(id).Status, fmt.Sprint(id))
	}
}

// TestWorkerTokensAreKeptOnlyOnceValid: a pool's worker token is computed
// once and kept after a pod presents it; a wrong token is refused before
// and after, and a refused pool leaves nothing behind.
func TestWorkerTokensAreKeptOnlyOnceValid(t *testing.T) {
	t.Parallel()
	c := &Coordinator{cfg: Config{Secret: testSecret}}
	good := auth.WorkerToken(testSecret, "pool-a")
	kept := func(pool string) bool { _, ok := c.poolTokens.Load(pool); return ok }

	assert.False(t, c.workerTokenValid("pool-a", "not-the-token"))
	assert.False(t, kept("pool-a"), "a refused token is not kept")
	assert.False(t, c.workerTokenValid("pool-b", good), "pool-a's token is not pool-b's")
	assert.False(t, kept("pool-b"))

	assert.True(t, c.workerTokenValid("pool-a", good))
	assert.True(t, kept("pool-a"))
	assert.True(t, c.workerTokenValid("pool-a", good), "the kept token")
	assert.False(t, c.workerTokenValid("pool-a", good[:len(good)-1]), "a prefix of the kept token")
	assert.False(t, c.workerTokenValid("pool-a", auth.WorkerToken([]byte("another-secret-another-secret-0123456789"), "pool-a")))
	assert.False(t, c.workerTokenValid("pool-b", good), "still not pool-b's")
}
