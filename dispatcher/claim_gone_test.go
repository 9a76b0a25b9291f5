package dispatcher

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestClaimForAPodThatLeftIsHandedBack: a pod whose Claim is cancelled
// while its claim statement runs (held up here by a lock on the job's row)
// never gets the job; the claim commits, and the coordinator hands the
// job straight back to the queue with the attempt given back, so the next
// pod claims it at once instead of after the lease and Stale Job
// Recovery's next pass. A Claim already cancelled pops nothing.
func TestClaimForAPodThatLeftIsHandedBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	inst := e.start(Config{})
	pool := store.DefaultPoolID
	id := e.submit(pool, 1)[0]
	// Calls made in the process, as the auth interceptor leaves them: the
	// call's context is the pod's, cancelled when the test says.
	claim := func(ctx context.Context, pod string) (*coordinatorv1.ClaimResponse, error) {
		return inst.coord.Claim(context.WithValue(ctx, poolKey{}, pool), &coordinatorv1.ClaimRequest{Lane: "live", Pod: pod})
	}

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := claim(cancelled, "pod-gone-early")
	assert.Equal(t, codes.Canceled, status.Code(err))
	assert.EqualValues(t, 1, e.queueLen(pool), "nothing popped for a pod that is gone")
	early := e.job(id)
	assert.Equal(t, store.JobQueued, early.Status)
	assert.Zero(t, early.Attempts, "nothing claimed for a pod that is gone")
	assert.Nil(t, early.Error)

	tx, err := e.db.Begin(t.Context())
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.Background()) }()
	_, err = tx.Exec(t.Context(), `SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE`, id)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	answered := make(chan error, 1)
	go func() {
		resp, err := claim(ctx, "pod-gone")
		if err == nil && resp.GetJob() != nil {
			t.Errorf("the pod that left got job %s", resp.GetJob().GetId())
		}
		answered <- err
	}()
	// The claim statement waits for the row: cancel the pod, then let it go.
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, e.db.QueryRow(t.Context(),
			`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		return waiting > 0
	}, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, tx.Rollback(t.Context()))
	assert.Equal(t, codes.Canceled, status.Code(<-answered))

	j := e.job(id)
	assert.Equal(t, store.JobQueued, j.Status)
	assert.Zero(t, j.Attempts, "the attempt is given back")
	assert.Nil(t, j.WorkerID)
	require.NotNil(t, j.Error)
	assert.Equal(t, handedBackMsg, *j.Error)
	assert.EqualValues(t, 1, e.queueLen(pool), "the id is back in its lane")
	evs, err := e.store.ListJobEvents(t.Context(), e.org.ID, id, 0, 10)
	require.NoError(t, err)
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	assert.Equal(t, []string{"job.queued", "job.started", "job.requeued"}, types)

	w := e.worker(inst.addr, pool)
	next := w.mustClaim(t, "pod-next")
	assert.Equal(t, id.String(), next.GetId())
	assert.EqualValues(t, 1, next.GetAttempt())
}

// TestPreparingForAPodThatLeft: when what a claimed job needs cannot be
// prepared, the attempt ends and the job waits out its backoff; but when
// the pod left meanwhile (which may be why preparing failed: its
// cancelled call cut a read short) the job is handed back at once with
// the attempt given back, as when the claim itself commits too late.
func TestPreparingForAPodThatLeft(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		podGone      bool
		wantCode     codes.Code
		wantStatus   string
		wantAttempts int
		wantError    string
		wantQueued   int64
	}{
		{"the pod is there: the attempt is used", false, codes.Internal, store.JobRetryWait, 1, "the input could not be prepared; retrying", 0},
		{"the pod left: handed back", true, codes.Canceled, store.JobQueued, 0, handedBackMsg, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			inst := e.start(Config{})
			pool := store.DefaultPoolID
			// Claimed as the coordinator's claim leaves it: running, held
			// by the pod's token, the id out of Redis.
			id := e.create(pool, 1, 3)[0]
			token := newClaimToken()
			now := time.Now()
			j, err := e.store.ClaimJob(t.Context(), id, pool, "live", "pod-1", hashToken(token), now, now.Add(time.Minute))
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(t.Context())
			if tc.podGone {
				cancel()
			}
			defer cancel()
			err = inst.coord.retryAtClaim(ctx, j, token, errors.New("object storage unreachable"),
				"job input could not be checked or presigned", "the input could not be prepared; retrying")
			assert.Equal(t, tc.wantCode, status.Code(err), "%v", err)
			got := e.job(id)
			assert.Equal(t, tc.wantStatus, got.Status)
			assert.Equal(t, tc.wantAttempts, got.Attempts)
			require.NotNil(t, got.Error)
			assert.Equal(t, tc.wantError, *got.Error)
			assert.Equal(t, tc.wantQueued, e.queueLen(pool))
		})
	}
}
