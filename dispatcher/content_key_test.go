package dispatcher

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/contentkey"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestClaimHandsOutTheJobsContentKey: an encrypted job's claim carries a
// fresh key with URIs on the public URL; a second attempt of the job gets
// the same key; the row holds the key sealed for that job only; a clear
// job's claim carries none.
func TestClaimHandsOutTheJobsContentKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.start(Config{PublicURL: "https://video.example.com/"})
	pool := e.pool("keys")
	w := e.worker(in.addr, pool.ID)
	spec := json.RawMessage(`{"packaging":"dash","segment_seconds":4,"renditions":[{"name":"360p","codec":"h264","height":360,"bitrate_kbps":500}],"encryption":{"method":"cenc"}}`)
	encrypted := e.submitSpec(pool.ID, spec)
	clear := e.submit(pool.ID, 1)[0]

	first := w.mustClaim(t, "pod-1")
	require.Equal(t, encrypted.String(), first.GetId())
	k := first.GetContentKey()
	require.NotNil(t, k, "an encrypted job comes with its key")
	require.Len(t, k.GetKey(), contentkey.Size)
	require.Len(t, k.GetKid(), 16)
	require.Equal(t, "https://video.example.com/v1/jobs/"+encrypted.String()+"/key", k.GetKeyUri())
	require.Equal(t, "https://video.example.com/v1/jobs/"+encrypted.String()+"/clearkey", k.GetLicenseUri())

	row, err := e.store.ContentKey(t.Context(), e.org.ID, encrypted)
	require.NoError(t, err)
	require.Equal(t, k.GetKid(), row.KID[:])
	require.False(t, bytes.Contains(row.SealedKey, k.GetKey()), "the key is stored sealed")
	sealer, err := contentkey.NewSealer(testSecret)
	require.NoError(t, err)
	opened, err := sealer.Open(encrypted, row.SealedKey)
	require.NoError(t, err)
	require.Equal(t, k.GetKey(), opened)
	_, err = sealer.Open(clear, row.SealedKey)
	require.ErrorIs(t, err, contentkey.ErrUnsealable, "a sealed key opens for its own job only")
	_, err = e.store.ContentKey(t.Context(), uuid.New(), encrypted)
	require.ErrorIs(t, err, store.ErrNotFound, "another organization does not see the key")

	// The pod is preempted: the job goes back to the queue, and its next
	// attempt encrypts with the same key.
	out, err := w.fail(t.Context(), first, coordinatorv1.PreemptedError, true)
	require.NoError(t, err)
	require.Equal(t, "requeued", out.GetOutcome())
	got := map[string]*coordinatorv1.Job{}
	for range 2 {
		j := w.mustClaim(t, "pod-2")
		got[j.GetId()] = j
		require.NoError(t, w.complete(t.Context(), j))
	}
	require.Len(t, got, 2)
	again := got[encrypted.String()]
	require.Equal(t, k.GetKey(), again.GetContentKey().GetKey(), "every attempt encrypts with the job's one key")
	require.Equal(t, k.GetKid(), again.GetContentKey().GetKid())
	require.Nil(t, got[clear.String()].GetContentKey(), "a clear job has no key")
}

func TestPublicURLIsChecked(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"video.example.com", "ftp://video.example.com", `https://x/"><y`} {
		cfg := Config{Secret: testSecret, PublicURL: u}
		require.ErrorContains(t, cfg.defaults(), "MPEGFLOW_PUBLIC_URL", u)
	}
}

// TestMayHaveKey: the pre-check never says no where encoding/json would
// find the field: each document's answer is checked against decoding it.
func TestMayHaveKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		doc  string
		want bool
	}{
		{`{"packaging":"hls","renditions":[]}`, false},
		{`{}`, false},
		{`{"encryption":{"method":"cenc"}}`, true},
		{`{"ENCRYPTION":{"method":"cenc"}}`, true},
		{`{"EnCrYpTiOn":{"method":"cenc"}}`, true},
		{`{"\u0065ncryption":{"method":"cenc"}}`, true},
		{`{"encryptio":1,"n":2}`, false},
		{`{"name":"encryption"}`, true}, // a value: decoding finds no field, the check may say yes
		{`{"title":"café"}`, true},      // not ASCII: decoded
		{`{"renditions":[{"encryption":{"method":"cenc"}}]}`, true},
	} {
		got := mayHaveKey([]byte(tc.doc), "encryption")
		require.Equal(t, tc.want, got, tc.doc)
		var spec struct {
			Encryption json.RawMessage `json:"encryption"`
		}
		require.NoError(t, json.Unmarshal([]byte(tc.doc), &spec), tc.doc)
		if spec.Encryption != nil {
			require.True(t, got, "%s: json finds the field, the check must not say no", tc.doc)
		}
	}
}
