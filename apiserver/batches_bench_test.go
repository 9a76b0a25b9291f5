package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/backfill"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// peakRSS is the process's peak resident set (VmHWM) in MiB: this process
// is the apiserver (REST handlers and the batch expander) under test.
func peakRSS(b *testing.B) float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatalf("read /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				b.Fatalf("parse VmHWM %q: %v", line, err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// BenchmarkBatchExpansion submits a batch of MPEGFLOW_BENCH_BATCH_INPUTS
// (default 100,000) manifest inputs through POST /v1/batches (which reads
// the manifest once to validate and count it) and expands it with the
// batch expander into backfill jobs in Postgres and ids in Redis, on the
// real services. It reports expansion jobs/s, end-to-end jobs/s (validation
// included) and the process's peak RSS.
//
//	VERSITYGW=~/.cache/mpegflow/tools/versitygw scripts/with-services.sh \
//	  go test -run '^$' -bench BenchmarkBatchExpansion -benchtime 1x ./apiserver/
func BenchmarkBatchExpansion(b *testing.B) {
	inputs := benchEnvInt("MPEGFLOW_BENCH_BATCH_INPUTS", 100_000)
	chunk := benchEnvInt("MPEGFLOW_BENCH_BATCH_CHUNK", 5000)
	inserters := benchEnvInt("MPEGFLOW_BENCH_BATCH_INSERTERS", 2)
	ctx := context.Background()
	db := testenv.Postgres(b)
	st := store.New(db)
	rdb, prefix := testenv.Redis(b)
	objects, err := objstore.New(b.Context(), testenv.S3(b))
	if err != nil {
		b.Fatal(err)
	}
	q := queue.New(rdb, queue.NewKeys(prefix))
	log := slog.New(slog.DiscardHandler)
	srv, err := New(Config{}, st, q, objects, events.NewBus(q, time.Now), log)
	if err != nil {
		b.Fatal(err)
	}
	boot, err := st.BootstrapOrg(ctx, "Bench", "bench@example.com", auth.Owner)
	if err != nil {
		b.Fatal(err)
	}
	x, err := backfill.NewExpander(backfill.Config{Storage: objects.Storage(), ChunkSize: chunk, Inserters: inserters}, st, q, objects, log)
	if err != nil {
		b.Fatal(err)
	}

	var expandSecs, totalSecs float64
	b.StopTimer()
	for i := range b.N {
		// The manifest goes through a temporary file, never whole in memory.
		asset, err := st.CreateAsset(ctx, boot.Org.ID, "library.jsonl", "application/jsonl", nil, func(id uuid.UUID) string {
			return "orgs/" + boot.Org.ID.String() + "/assets/" + id.String() + "/source"
		})
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.CreateTemp(b.TempDir(), "manifest")
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriter(f)
		for n := range inputs {
			fmt.Fprintf(w, "{\"input\":\"s3://%s/orgs/%s/library/%d/%07d.mxf\"}\n", objects.Bucket(), boot.Org.ID, i, n)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		if _, err := f.Seek(0, 0); err != nil {
			b.Fatal(err)
		}
		if err := objects.Put(ctx, asset.ObjectKey, f); err != nil {
			b.Fatal(err)
		}
		f.Close()

		body, _ := json.Marshal(map[string]any{"workflow": "hls-ladder", "source": map[string]any{"manifest_asset_id": asset.ID}})
		b.StartTimer()
		start := time.Now()
		req := httptest.NewRequest("POST", "/v1/batches", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+boot.Key)
		resp, err := srv.App().Test(req, -1)
		if err != nil {
			b.Fatal(err)
		}
		var created apiv1.Batch
		if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusCreated {
			b.Fatalf("POST /v1/batches: %d %v", resp.StatusCode, err)
		}
		resp.Body.Close()
		accepted := time.Now()
		n, err := x.ExpandOnce(ctx)
		if err != nil {
			b.Fatal(err)
		}
		done := time.Now()
		b.StopTimer()
		if n != inputs {
			b.Fatalf("expanded %d jobs, want %d", n, inputs)
		}
		if l, _ := q.Len(ctx, store.DefaultPoolID, apiv1.LaneBackfill); l != int64(inputs*(i+1)) {
			b.Fatalf("backfill lane holds %d ids, want %d", l, inputs*(i+1))
		}
		expandSecs += done.Sub(accepted).Seconds()
		totalSecs += done.Sub(start).Seconds()
	}
	total := float64(inputs * b.N)
	b.ReportMetric(total/expandSecs, "jobs/s")
	b.ReportMetric(total/totalSecs, "e2e_jobs/s")
	b.ReportMetric(peakRSS(b), "peak_rss_MiB")
	b.ReportMetric(0, "ns/op")
}
