package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"path"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// MaxOutputFiles bounds one job's outputs (an HLS ladder of a long film has
// a few thousand segments).
const MaxOutputFiles = 20000

var outputName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)

// checkOutputName refuses names that could escape the job's output prefix.
func checkOutputName(name string) string {
	if len(name) == 0 || len(name) > 255 || !outputName.MatchString(name) || path.Clean(name) != name || strings.Contains(name, "..") {
		return "must be a relative path of letters, digits, '.', '_', '-' and '/', at most 255 characters, without '..'"
	}
	return ""
}

// OutputKey is where a job's output file lives in storage. A split job's
// stitch task writes the job's outputs; its chunk and whole-input tasks
// write their media segments there too, under their final names, and the
// rest of their parts under the job's tasks/ prefix, which the stitch task
// reads (docs/design/0028-chunked-encoding.md).
func OutputKey(j store.Job, name string) string {
	if j.ParentID == nil {
		return fmt.Sprintf("orgs/%s/jobs/%s/outputs/%s", j.OrgID, j.ID, name)
	}
	if j.Task == store.TaskStitch || coordinatorv1.IsMediaSegment(name) {
		// The stitch task publishes the job's outputs; chunks and the
		// whole-input task put their media segments at their final keys.
		return fmt.Sprintf("orgs/%s/jobs/%s/outputs/%s", j.OrgID, *j.ParentID, name)
	}
	return fmt.Sprintf("orgs/%s/jobs/%s/tasks/%s/%s", j.OrgID, *j.ParentID, j.ID, name)
}

// PresignOutputs grants PUTs for files a held job produced.
func (c *Coordinator) PresignOutputs(ctx context.Context, req *coordinatorv1.PresignOutputsRequest) (*coordinatorv1.PresignOutputsResponse, error) {
	id, err := parseJobID("PresignOutputs", req.GetJobId())
	if err != nil {
		return nil, err
	}
	files := req.GetFiles()
	if len(files) == 0 || len(files) > 1000 {
		return nil, status.Error(codes.InvalidArgument, "PresignOutputs: ask for 1 to 1000 files per call")
	}
	var errs validation.Errors
	seen := make(map[string]bool, len(files))
	for i, f := range files {
		if d := checkOutputName(f.GetName()); d != "" {
			errs.Add(fmt.Sprintf("files[%d].name", i), "%s", d)
		} else if seen[f.GetName()] {
			// Two grants for one key: Complete would record one file where
			// the pod uploaded two, and one upload silently replaces the other.
			errs.Add(fmt.Sprintf("files[%d].name", i), "listed twice")
		}
		seen[f.GetName()] = true
		if _, _, err := mime.ParseMediaType(f.GetContentType()); err != nil {
			errs.Add(fmt.Sprintf("files[%d].content_type", i), "must be a media type such as video/mp4")
		}
	}
	if len(errs) > 0 {
		return nil, c.toStatus(ctx, "PresignOutputs", errs)
	}
	tok, err := claimTokenHash(ctx)
	if err != nil {
		return nil, err
	}
	j, err := c.store.CheckHeld(ctx, id, poolOf(ctx), tok)
	if err != nil {
		return nil, c.toStatus(ctx, "PresignOutputs", err)
	}
	if err := checkChunkSegments(j, files); err != nil {
		return nil, c.toStatus(ctx, "PresignOutputs", err)
	}
	out := &coordinatorv1.PresignOutputsResponse{}
	for _, f := range files {
		p, err := c.objects.PresignPut(ctx, OutputKey(j, f.GetName()), f.GetContentType())
		if err != nil {
			return nil, c.toStatus(ctx, "PresignOutputs", err)
		}
		out.Uploads = append(out.Uploads, &coordinatorv1.PresignedUpload{
			Name: f.GetName(), Url: p.URL, Method: p.Method,
			Headers: map[string]string{"Content-Type": f.GetContentType()},
		})
	}
	return out, nil
}

// outputRecord is one output as stored in the job's outputs column.
type outputRecord struct {
	Name        string            `json:"name"`
	Kind        string            `json:"kind"`
	SizeBytes   int64             `json:"size_bytes"`
	ContentType string            `json:"content_type"`
	Key         string            `json:"key"`
	Attributes  map[string]string `json:"attributes,omitempty"`
}

// checkOutputs validates what Complete reports and checks that every file
// is really in storage, so a completed job never points at a missing object.
// It runs before the completing transaction, never inside it.
func (c *Coordinator) checkOutputs(ctx context.Context, j store.Job, outs []*coordinatorv1.Output) (json.RawMessage, error) {
	if len(outs) > MaxOutputFiles {
		return nil, status.Errorf(codes.InvalidArgument, "Complete: at most %d outputs", MaxOutputFiles)
	}
	var errs validation.Errors
	recs := make([]outputRecord, 0, len(outs))
	seen := map[string]bool{}
	for i, o := range outs {
		if d := checkOutputName(o.GetName()); d != "" {
			errs.Add(fmt.Sprintf("outputs[%d].name", i), "%s", d)
			continue
		}
		if seen[o.GetName()] {
			errs.Add(fmt.Sprintf("outputs[%d].name", i), "listed twice")
		}
		seen[o.GetName()] = true
		if o.GetSizeBytes() < 0 {
			errs.Add(fmt.Sprintf("outputs[%d].size_bytes", i), "must not be negative")
		}
		recs = append(recs, outputRecord{Name: o.GetName(), Kind: o.GetKind(), SizeBytes: o.GetSizeBytes(),
			ContentType: o.GetContentType(), Key: OutputKey(j, o.GetName()), Attributes: o.GetAttributes()})
	}
	if len(errs) > 0 {
		return nil, c.toStatus(ctx, "Complete", errs)
	}
	// One HEAD per output, OutputChecks at a time; the first missing file
	// or failed HEAD stops the rest.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.cfg.OutputChecks)
	for _, r := range recs {
		g.Go(func() error {
			ok, err := c.objects.Exists(gctx, r.Key)
			if err != nil {
				return fmt.Errorf("check output %q in storage: %w", r.Name, err)
			}
			if !ok {
				return status.Errorf(codes.FailedPrecondition, "Complete: output %q was never uploaded", r.Name)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, c.toStatus(ctx, "Complete", err)
	}
	b, err := json.Marshal(recs)
	if err != nil {
		return nil, c.toStatus(ctx, "Complete", err)
	}
	return b, nil
}

// checkChunkSegments keeps a chunk task to its own media segments: they go
// to the job's final keys (OutputKey), so a chunk may write only the
// numbers of its range, never another chunk's.
func checkChunkSegments(j store.Job, files []*coordinatorv1.OutputFile) error {
	if j.Task != store.TaskChunk {
		return nil
	}
	var data store.TaskData
	if err := json.Unmarshal(j.TaskData, &data); err != nil || data.Chunk == nil {
		return fmt.Errorf("the chunk task %s has no range: %w", j.ID, err)
	}
	c := *data.Chunk
	var errs validation.Errors
	for i, f := range files {
		if !coordinatorv1.IsMediaSegment(f.GetName()) {
			continue
		}
		n, ok := segmentNumber(f.GetName())
		if !ok || n < c.FirstSegment || (c.NextSegment > 0 && n >= c.NextSegment) {
			errs.Add(fmt.Sprintf("files[%d].name", i), "chunk %d writes the segments of its own range only (from number %d)", c.Index, c.FirstSegment)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// segmentNumber is a media segment's number in the whole encode, from 0:
// HLS's seg_NNNNN.m4s counts from 0, the DASH layout's seg_<i>_NNNNN.m4s
// from 1.
func segmentNumber(name string) (int, bool) {
	base := strings.TrimSuffix(strings.TrimPrefix(path.Base(name), "seg_"), ".m4s")
	from := 0
	if stream, num, dash := strings.Cut(base, "_"); dash {
		if _, err := strconv.Atoi(stream); err != nil {
			return 0, false
		}
		base, from = num, 1
	}
	n, err := strconv.Atoi(base)
	if err != nil || n < from {
		return 0, false
	}
	return n - from, true
}
