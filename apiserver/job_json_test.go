package apiserver

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// TestAppendJobIsMarshal: the submission's answer is json.Marshal's, byte
// for byte, for jobs with every field set or none, text that needs
// escaping, Postgres's spacing in the documents, and random mixes of
// them; what Marshal refuses, appendJob refuses.
func TestAppendJobIsMarshal(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	at := func(t time.Time) *time.Time { return &t }
	now := time.Date(2026, 12, 6, 18, 30, 1, 123456789, time.UTC)
	full := apiv1.Job{
		ID: "0193a5c2-7f00-7000-8000-000000000001", PoolID: "pool-é", Lane: apiv1.LaneBackfill, Priority: -100, Status: "running",
		InputAssetID: str("0193a5c2-7f00-7000-8000-000000000002"), InputURL: str("s3://bucket/orgs/x/in <1>&.mp4"),
		Captions:       []apiv1.JobCaption{{URL: "s3://b/fr.vtt", Language: "fr", Format: "vtt"}, {URL: "https://x/\"q\".srt", Language: "pt-BR", Format: "srt"}},
		WorkflowID:     str("0193a5c2-7f00-7000-8000-000000000003"),
		Spec:           json.RawMessage(`{"packaging": "hls", "renditions": [{"name": "360p", "height": 360}], "note": "<b>\u2028"}`),
		IdempotencyKey: str("key-1"), Attempts: 2, MaxAttempts: 5, LeaseExpiresAt: at(now.Add(time.Minute)),
		RunAfter: at(now.In(time.FixedZone("x", 3600))), WorkerID: str("pod\n1"), Progress: 0.7, Error: str("ffmpeg: exit 1 \x00"),
		Outputs: json.RawMessage(`[{"key": "orgs/x/out.m3u8", "size": 10}]`), Usage: json.RawMessage(`{"encode_seconds": 1.5}`),
		Metadata: json.RawMessage(`{"k": "v & w"}`), CreatedAt: now, UpdatedAt: now.Add(time.Second), StartedAt: at(now), FinishedAt: at(now),
	}
	cases := []apiv1.Job{full, {}, {Spec: json.RawMessage(`{}`), Outputs: json.RawMessage(`[]`), Usage: json.RawMessage(`{}`), Metadata: json.RawMessage(`{}`)},
		{InputURL: str(""), Error: str(""), Progress: 1e-7}, {Progress: 1}}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		j := full
		if r.IntN(2) == 0 {
			j.InputAssetID, j.WorkflowID, j.RunAfter = nil, nil, nil
		}
		if r.IntN(2) == 0 {
			j.Captions, j.IdempotencyKey, j.StartedAt = nil, nil, nil
		}
		if r.IntN(2) == 0 {
			j.LeaseExpiresAt, j.WorkerID, j.Error, j.FinishedAt = nil, nil, nil, nil
		}
		if r.IntN(3) == 0 {
			j.Outputs, j.Usage = nil, nil
		}
		j.Progress = r.Float32()
		j.Priority = r.IntN(201) - 100
		j.Status = "s" + strconv.Itoa(i) + string(rune(r.IntN(0x3000)))
		j.CreatedAt = now.Add(time.Duration(r.Int64N(int64(1000 * time.Hour))))
		cases = append(cases, j)
	}
	for i, j := range cases {
		want, err := json.Marshal(j)
		require.NoError(t, err)
		got, err := appendJob(nil, j)
		require.NoError(t, err, "case %d", i)
		require.Equal(t, string(want), string(got), "case %d", i)
	}

	for name, j := range map[string]apiv1.Job{
		"spec that is not JSON": {Spec: json.RawMessage(`{"a":`)},
		"empty usage":           {Usage: json.RawMessage{}},
		"year past 9999":        {CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		_, want := json.Marshal(j)
		require.Error(t, want, name)
		_, err := appendJob(nil, j)
		require.Error(t, err, name)
	}
}
