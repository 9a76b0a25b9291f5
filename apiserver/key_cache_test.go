package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/store"
)

// replicas are two API servers like two apiserver pods: the same Postgres
// and Redis (key prefix), each with its own key cache subscribed to the
// shared invalidation channel. The TTL is an hour, so within a test only an
// invalidation message can make a replica forget a key.
type replicas struct {
	a, b   *Server
	ca, cb *KeyCache
}

func newReplicas(t *testing.T, f *fixture) replicas {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var r replicas
	var done []chan error
	for _, dst := range []struct {
		srv   **Server
		cache **KeyCache
	}{{&r.a, &r.ca}, {&r.b, &r.cb}} {
		kc, err := NewKeyCache(f.rdb, f.queue.Keys().KeyInvalidation(), KeyCacheConfig{TTL: time.Hour}, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		srv, err := New(Config{Guard: testGuard(), Clock: f.clock, Uploads: testUploads, KeyCache: kc},
			f.store, f.queue, f.objects, events.NewBus(f.queue, time.Now), slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		ch := make(chan error, 1)
		go func() { ch <- kc.Run(ctx) }()
		done = append(done, ch)
		*dst.srv, *dst.cache = srv, kc
	}
	t.Cleanup(func() {
		cancel()
		for _, ch := range done {
			require.NoError(t, <-ch)
		}
	})
	// Nothing is cached before a cache has subscribed: wait for both.
	require.Eventually(t, func() bool { return r.ca.ready() && r.cb.ready() }, 10*time.Second, 5*time.Millisecond)
	return r
}

func call(t *testing.T, srv *Server, method, path, key string, v any) response {
	t.Helper()
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		body = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, body)
	if v != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := srv.App().Test(req, -1)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// TestKeyCacheRevokeReachesOtherReplica: a key cached on replica B and
// revoked through replica A is refused by B (401) once A's invalidation
// message arrives — long before the cache's hour-long TTL.
func TestKeyCacheRevokeReachesOtherReplica(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := newReplicas(t, f)
	owner := f.keys[auth.Owner]

	var created apiv1.APIKeyCreated
	resp := call(t, r.a, "POST", "/v1/api-keys", owner, map[string]any{"name": "revoked on A"})
	require.Equal(t, http.StatusCreated, resp.Status, "%s", resp.Body)
	resp.json(t, &created)
	require.Equal(t, http.StatusOK, call(t, r.b, "GET", "/v1/jobs", created.Key, nil).Status, "B knows the key (and caches it)")
	require.Equal(t, 1, r.cb.len(), "B cached the key")

	resp = call(t, r.a, "DELETE", "/v1/api-keys/"+created.ID, owner, nil)
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp.Body)
	require.Equal(t, http.StatusUnauthorized, call(t, r.a, "GET", "/v1/jobs", created.Key, nil).Status,
		"the replica that revoked refuses at once")
	require.Eventually(t, func() bool {
		return call(t, r.b, "GET", "/v1/jobs", created.Key, nil).Status == http.StatusUnauthorized
	}, 10*time.Second, 10*time.Millisecond, "B refuses the revoked key after the invalidation message")
	require.Equal(t, http.StatusOK, call(t, r.b, "GET", "/v1/jobs", owner, nil).Status, "other keys still work")
}

// TestKeyCacheRoleChangeReachesOtherReplica: demoting a member through
// replica A takes effect on replica B, which had the member's key cached
// with the old role.
func TestKeyCacheRoleChangeReachesOtherReplica(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := newReplicas(t, f)
	editor := f.keys[auth.Editor]
	require.Equal(t, http.StatusCreated, call(t, r.b, "POST", "/v1/jobs", editor, urlJob()).Status, "an editor submits jobs")

	var members apiv1.Page[apiv1.Member]
	resp := call(t, r.a, "GET", "/v1/members", f.keys[auth.Owner], nil)
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp.Body)
	resp.json(t, &members)
	var editorID string
	for _, m := range members.Items {
		if m.Email == "editor@a.example" {
			editorID = m.UserID
		}
	}
	require.NotEmpty(t, editorID)
	resp = call(t, r.a, "PATCH", "/v1/members/"+editorID, f.keys[auth.Owner], map[string]any{"role": "viewer"})
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp.Body)
	require.Eventually(t, func() bool {
		return call(t, r.b, "POST", "/v1/jobs", editor, urlJob()).Status == http.StatusForbidden
	}, 10*time.Second, 10*time.Millisecond, "B acts on the demotion after the invalidation message")
}

// TestKeyCacheStaleReadIsNotCached: a principal read from Postgres before
// an invalidation arrived is not cached, since it may predate the change.
func TestKeyCacheStaleReadIsNotCached(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := newReplicas(t, f)
	key := f.keys[auth.Viewer]
	_, gen, ok := r.cb.lookup(key)
	require.False(t, ok)
	r.cb.forget(uuid.Nil) // an invalidation lands while the read is in flight
	r.cb.keep(key, principalOf(t, f, key), gen)
	_, _, ok = r.cb.lookup(key)
	require.False(t, ok, "a read older than the last invalidation is not kept")

	_, gen, _ = r.cb.lookup(key)
	r.cb.keep(key, principalOf(t, f, key), gen)
	_, _, ok = r.cb.lookup(key)
	require.True(t, ok)
}

func principalOf(t *testing.T, f *fixture, key string) store.Principal {
	t.Helper()
	p, err := f.store.Authenticate(t.Context(), key)
	require.NoError(t, err)
	return p
}

// TestKeyCacheInvalidationIsWhatRevokes shows the two halves apart: a key
// revoked in Postgres behind the API's back is still served from B's cache
// (within its TTL, by design), and the invalidation message alone makes B
// read Postgres again and refuse it.
func TestKeyCacheInvalidationIsWhatRevokes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := newReplicas(t, f)
	owner := principalOf(t, f, f.keys[auth.Owner])
	key, rec, err := f.store.CreateKey(t.Context(), owner.OrgID, owner.UserID, "behind the API's back", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, call(t, r.b, "GET", "/v1/jobs", key, nil).Status)

	_, err = f.store.RevokeKey(t.Context(), owner.OrgID, owner.UserID, rec.ID, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, call(t, r.b, "GET", "/v1/jobs", key, nil).Status, "B answers from its cache")
	require.Equal(t, http.StatusUnauthorized, call(t, r.a, "GET", "/v1/jobs", key, nil).Status, "A never cached the key: it reads Postgres")

	require.NoError(t, r.ca.Invalidate(t.Context(), owner.OrgID))
	require.Eventually(t, func() bool {
		return call(t, r.b, "GET", "/v1/jobs", key, nil).Status == http.StatusUnauthorized
	}, 10*time.Second, 10*time.Millisecond, "the message from A makes B forget the key")
}

// TestKeyCacheShareWeightReachesOtherReplica: a cached principal carries
// its organization's share weight and submissions are queued with it (no
// read of the weight per submission), so a weight set through replica A
// must reach the jobs B queues: at once on A, after A's invalidation
// message on B. A weight changed behind the API's back waits for the
// message (or the TTL, or the queue reconciler).
func TestKeyCacheShareWeightReachesOtherReplica(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := newReplicas(t, f)
	keyB, sa := f.keyB, f.keys[auth.SuperAdmin]
	weight := func(t *testing.T, srv *Server) int {
		t.Helper()
		resp := call(t, srv, "POST", "/v1/jobs", keyB, urlJob())
		require.Equal(t, http.StatusCreated, resp.Status, "%s", resp.Body)
		var j apiv1.Job
		resp.json(t, &j)
		w, err := f.rdb.HGet(t.Context(), f.queue.Keys().Shares(j.PoolID, j.Lane), "w:"+f.orgB.ID.String()).Int()
		require.NoError(t, err)
		return w
	}
	require.Equal(t, 1, weight(t, r.a), "free plan")
	require.Equal(t, 1, weight(t, r.b), "free plan")
	require.Equal(t, 1, r.cb.len(), "B cached B's key")

	resp := call(t, r.a, "PATCH", "/v1/admin/organizations/"+f.orgB.ID.String(), sa, map[string]any{"share_weight": 7})
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp.Body)
	require.Equal(t, 7, weight(t, r.a), "the replica that changed the weight queues with it at once")
	require.Eventually(t, func() bool { _, _, ok := r.cb.lookup(keyB); return !ok }, 10*time.Second, 5*time.Millisecond,
		"A's invalidation message makes B forget B's key")
	require.Equal(t, 7, weight(t, r.b), "B reads the new weight with the key (a stale principal would push 1 over A's 7)")

	resp = call(t, r.a, "PATCH", "/v1/admin/organizations/"+f.orgB.ID.String(), sa, map[string]any{"plan": "enterprise", "share_weight": nil})
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp.Body)
	require.Eventually(t, func() bool { _, _, ok := r.cb.lookup(keyB); return !ok }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 4, weight(t, r.b), "a plan change reaches B too: enterprise's default")

	// Behind the API's back: B keeps the cached weight until told.
	two := 2
	_, err := f.store.AdminUpdateOrg(t.Context(), f.orgB.ID, store.OrgAdminPatch{SetShareWeight: true, ShareWeight: &two})
	require.NoError(t, err)
	require.Equal(t, 4, weight(t, r.b), "B answers from its cache: the submission read no weight")
	require.NoError(t, r.ca.Invalidate(t.Context(), f.orgB.ID))
	require.Eventually(t, func() bool { _, _, ok := r.cb.lookup(keyB); return !ok }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 2, weight(t, r.b))
}
