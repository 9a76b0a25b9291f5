package encoder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/encoder/ffmpeg"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// splitDone ends an attempt that split its job into tasks
// (docs/design/0028-chunked-encoding.md): the coordinator took the job
// over, so the pod neither completes nor fails it.
type splitDone struct{ tasks int }

func (s *splitDone) Error() string { return fmt.Sprintf("split into %d tasks", s.tasks) }

// work runs what the claim hands out: a job (encoded whole, or split),
// or one task of a split job.
func (w *Worker) work(ctx context.Context, log *slog.Logger, job *coordinatorv1.Job, dir string, progress func(float64)) ([]*coordinatorv1.Output, *coordinatorv1.Usage, error) {
	switch job.GetTask() {
	case "", coordinatorv1.TaskJob:
		return w.encode(ctx, log, job, dir, progress)
	case coordinatorv1.TaskChunk, coordinatorv1.TaskWhole:
		return w.encodePart(ctx, log, job, dir, progress)
	case coordinatorv1.TaskStitch:
		return w.stitch(ctx, log, job, dir)
	}
	return nil, nil, fmt.Errorf("the coordinator handed out a %q task, which this encoder does not know: is the encoder image older than the coordinator?", job.GetTask())
}

// maybeSplit splits the job when its spec asks for chunking and the input
// is long enough: the chunks from the input's keyframes on the spec's
// segment grid (ffmpeg.PlanChunks), one task each plus the whole-input
// task, through the coordinator's Split. It returns *splitDone when it
// split, nil when the job is encoded here.
func (w *Worker) maybeSplit(ctx context.Context, log *slog.Logger, job *coordinatorv1.Job, spec encodespec.Spec, info ffmpeg.MediaInfo, input string) error {
	if spec.Chunking == nil || info.DurationSeconds < spec.Chunking.Threshold() {
		return nil
	}
	if why := ffmpeg.Chunkable(spec); why != "" {
		log.InfoContext(ctx, "encoding whole: "+why)
		return nil
	}
	keys, err := ffmpeg.Keyframes(ctx, w.cfg.FFprobe, input, info)
	if err != nil {
		return err
	}
	chunks, err := ffmpeg.PlanChunks(info.DurationSeconds, keys, ffmpeg.ChunkGrid(spec), spec.Chunking.ChunkSeconds)
	if err != nil {
		return &ffmpeg.InputError{Msg: err.Error()}
	}
	if len(chunks) < 2 {
		return nil
	}
	media, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("split: the probe: %w", err)
	}
	req := &coordinatorv1.SplitRequest{JobId: job.GetId(), WholeTask: true, MediaInfoJson: media}
	for _, c := range chunks {
		req.Chunks = append(req.Chunks, &coordinatorv1.ChunkRange{Index: int32(c.Index), StartSeconds: c.Start, EndSeconds: c.End, FirstSegment: int32(c.FirstSegment)})
	}
	resp, err := w.client.Split(w.auth(ctx, job.GetClaimToken()), req)
	if err != nil {
		return fmt.Errorf("split: %w", err)
	}
	log.InfoContext(ctx, "job split into tasks", slog.Int("chunks", len(chunks)), slog.Int("tasks", len(resp.GetTaskIds())))
	return &splitDone{tasks: len(resp.GetTaskIds())}
}

// taskPlan is what every task plans from: the probe of the input the
// splitting pod sent, the spec fitted to it, and this pod's encoders.
func (w *Worker) taskPlan(ctx context.Context, log *slog.Logger, job *coordinatorv1.Job) (ffmpeg.MediaInfo, encodespec.Spec, []ffmpeg.EncoderChoice, error) {
	var info ffmpeg.MediaInfo
	if err := json.Unmarshal(job.GetMediaInfoJson(), &info); err != nil {
		return info, encodespec.Spec{}, nil, fmt.Errorf("the task's probe of the input does not decode: %w", err)
	}
	if !(info.DurationSeconds > 0) {
		return info, encodespec.Spec{}, nil, errors.New("the task's probe of the input has no duration")
	}
	// The input is opened with the demuxer the probe names: only one
	// Probe itself would have allowed.
	if !ffmpeg.AllowedContainer(info.Container) {
		return info, encodespec.Spec{}, nil, fmt.Errorf("the task's probe names the container %q, which inputs are never read as", info.Container)
	}
	spec, err := parseSpec(job.GetSpecJson(), info)
	if err != nil {
		return info, spec, nil, &ffmpeg.InputError{Msg: err.Error()}
	}
	choices, err := w.encoders(ctx, log, spec)
	return info, spec, choices, err
}

// taskChunk is a chunk task's range.
func taskChunk(c *coordinatorv1.ChunkRange) ffmpeg.Chunk {
	return ffmpeg.Chunk{Index: int(c.GetIndex()), Start: c.GetStartSeconds(), End: c.GetEndSeconds(), FirstSegment: int(c.GetFirstSegment())}
}

// encodePart runs a chunk task (every video rendition of its range) or the
// whole-input task (audio, subtitles, images), verifies what it made,
// writes the ledger of its media segments (ffmpeg.IndexSegments) and
// uploads: the segments to the job's final output keys, the rest under the
// job's tasks/ prefix for the stitch task. A chunk reads only its range of
// the input with range requests: on the presigned URL of an uploaded
// input, or on a loopback proxy of a customer's URL whose every
// connection passes the SSRF guard (serveInput). The whole-input task
// downloads the input.
func (w *Worker) encodePart(ctx context.Context, log *slog.Logger, job *coordinatorv1.Job, dir string, progress func(float64)) ([]*coordinatorv1.Output, *coordinatorv1.Usage, error) {
	info, spec, choices, err := w.taskPlan(ctx, log, job)
	if err != nil {
		return nil, nil, err
	}
	input := filepath.Join(dir, "input")
	var opts []ffmpeg.PlanOption
	seconds, part := info.DurationSeconds, info
	if job.GetTask() == coordinatorv1.TaskChunk {
		if job.GetChunk() == nil {
			return nil, nil, errors.New("the chunk task has no range")
		}
		c := taskChunk(job.GetChunk())
		opts = append(opts, ffmpeg.WithChunk(c))
		seconds = c.Seconds()
		part.DurationSeconds = seconds
	} else {
		captions, err := w.captions(ctx, job, dir, info.DurationSeconds)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, ffmpeg.WithWholeInput(), ffmpeg.WithCaptions(captions...))
	}
	switch {
	case job.GetTask() == coordinatorv1.TaskChunk && job.GetInputPresigned():
		opts = append(opts, ffmpeg.WithPresignedInput(job.GetInputUrl()))
	case job.GetTask() == coordinatorv1.TaskChunk:
		// A customer's URL: read through the guarded proxy, range by range.
		local, stop, err := w.serveInput(ctx, log, job.GetInputUrl())
		if err != nil {
			return nil, nil, err
		}
		defer stop()
		opts = append(opts, ffmpeg.WithPresignedInput(local))
	default:
		if err := w.download(ctx, job.GetInputUrl(), job.GetInputPresigned(), input); err != nil {
			return nil, nil, err
		}
	}
	out := filepath.Join(dir, "out")
	cmd, err := ffmpeg.Plan(spec, info, input, out, choices, opts...)
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	if err := ffmpeg.Run(ctx, w.cfg.FFmpeg, cmd, seconds, progress); err != nil {
		return nil, nil, err
	}
	encodeSeconds := time.Since(start).Seconds()
	files, err := ffmpeg.Collect(cmd)
	if err != nil {
		return nil, nil, err
	}
	if err := ffmpeg.Verify(ctx, w.cfg.FFprobe, cmd, files, part); err != nil {
		if c := job.GetChunk(); c != nil && job.GetTask() == coordinatorv1.TaskChunk {
			// Say which part of the input: a damaged range shows as a
			// rendition shorter than the range.
			err = fmt.Errorf("the input from %s s to %s s: %w", strconv.FormatFloat(c.GetStartSeconds(), 'f', -1, 64), strconv.FormatFloat(c.GetEndSeconds(), 'f', -1, 64), err)
		}
		return nil, nil, &verifyError{err: err}
	}
	// Media segments go to their final keys (the coordinator keys them by
	// name); the ledger tells the stitch task what they hold.
	ledger, err := ffmpeg.IndexSegments(cmd)
	if err != nil {
		return nil, nil, &verifyError{err: err}
	}
	if len(ledger) > 0 {
		if err := ffmpeg.WriteLedger(out, ledger); err != nil {
			return nil, nil, err
		}
		files = append(files, ffmpeg.Output{Name: ffmpeg.LedgerName, Kind: ffmpeg.KindManifest, ContentType: "application/json"})
	}
	if err := w.upload(ctx, job, out, files); err != nil {
		return nil, nil, err
	}
	// A chunk's seconds of output are its range; the whole-input task's
	// audio and images go with the video the chunks count.
	outputSeconds := 0.0
	if job.GetTask() == coordinatorv1.TaskChunk {
		outputSeconds = seconds
	}
	return describe(out, files, choices), usageOf(choices, encodeSeconds, outputSeconds), nil
}

// stitch runs a split job's stitch task: it downloads every part's files
// but the media segments (which the parts uploaded to their final keys;
// each part's ledger describes them), plans each part's command again
// from the same spec, probe and range (Plan is deterministic), has
// ffmpeg.Stitch write the manifests over them (no re-encode, no segment
// read), verifies the result as a whole encode's, checks the seams between
// chunks, and uploads what it wrote: playlists, manifests, init segments
// and the whole-input part's other files. MP4 outputs are joined from the
// parts' files, which it downloads.
func (w *Worker) stitch(ctx context.Context, log *slog.Logger, job *coordinatorv1.Job, dir string) ([]*coordinatorv1.Output, *coordinatorv1.Usage, error) {
	start := time.Now()
	info, spec, choices, err := w.taskPlan(ctx, log, job)
	if err != nil {
		return nil, nil, err
	}
	captions, err := w.captions(ctx, job, dir, info.DurationSeconds)
	if err != nil {
		return nil, nil, err
	}
	input := filepath.Join(dir, "input") // planned from, never read
	var (
		chunks []ffmpeg.Chunk
		parts  []ffmpeg.Command
		whole  *ffmpeg.Command
	)
	for i, p := range job.GetParts() {
		partDir := filepath.Join(dir, "parts", strconv.Itoa(i))
		if err := w.fetchPart(ctx, p, partDir); err != nil {
			return nil, nil, err
		}
		ledger, err := ffmpeg.ReadLedger(partDir)
		if err != nil {
			return nil, nil, &verifyError{err: fmt.Errorf("stitch: part %d: %w", i, err)}
		}
		if p.GetTask() == coordinatorv1.TaskWhole {
			cmd, err := ffmpeg.Plan(spec, info, input, partDir, choices, ffmpeg.WithWholeInput(), ffmpeg.WithCaptions(captions...))
			if err != nil {
				return nil, nil, err
			}
			cmd.Remote = ledger
			whole = &cmd
			continue
		}
		if p.GetChunk() == nil {
			return nil, nil, fmt.Errorf("stitch: part %d is a chunk without a range", i)
		}
		c := taskChunk(p.GetChunk())
		cmd, err := ffmpeg.Plan(spec, info, input, partDir, choices, ffmpeg.WithChunk(c))
		if err != nil {
			return nil, nil, err
		}
		cmd.Remote = ledger
		chunks, parts = append(chunks, c), append(parts, cmd)
	}
	if whole == nil {
		return nil, nil, errors.New("stitch: the job's whole-input part is missing")
	}
	out := filepath.Join(dir, "out")
	cmd, err := ffmpeg.Stitch(ctx, w.cfg.FFmpeg, out, info, chunks, parts, *whole)
	if err != nil {
		return nil, nil, &verifyError{err: err}
	}
	files, err := ffmpeg.Collect(cmd)
	if err != nil {
		return nil, nil, err
	}
	if err := ffmpeg.Verify(ctx, w.cfg.FFprobe, cmd, files, info); err != nil {
		return nil, nil, &verifyError{err: err}
	}
	if spec.Packaging.Segmented() {
		if err := ffmpeg.CheckSeams(cmd, info); err != nil {
			return nil, nil, &verifyError{err: err}
		}
	}
	// The segments are at their final keys already: only the rest is
	// uploaded, and the segments' sizes come from the ledgers.
	var local []ffmpeg.Output
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(out, filepath.FromSlash(f.Name))); err == nil {
			local = append(local, f)
		}
	}
	if err := w.upload(ctx, job, out, local); err != nil {
		return nil, nil, err
	}
	outs := describe(out, files, choices)
	for _, o := range outs {
		if f, remote := cmd.Remote[o.GetName()]; remote && o.GetSizeBytes() == 0 {
			o.SizeBytes = f.Size
		}
	}
	log.InfoContext(ctx, "stitched", slog.Int("chunks", len(chunks)), slog.Int("outputs", len(files)), slog.Int("uploaded", len(local)))
	return outs, usageOf(choices, time.Since(start).Seconds(), 0), nil
}

// fetchPart downloads one part's files into dir, under the names the task
// gave them (checked by the coordinator: relative, no "..").
func (w *Worker) fetchPart(ctx context.Context, p *coordinatorv1.TaskPart, dir string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.cfg.UploadConcurrency)
	for _, f := range p.GetFiles() {
		name := filepath.FromSlash(f.GetName())
		if !filepath.IsLocal(name) {
			return fmt.Errorf("stitch: a part's file is named %q, outside its directory", f.GetName())
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("stitch: %w", err)
		}
		g.Go(func() error {
			return w.fetch(gctx, f.GetUrl(), true, dst, w.cfg.MaxInputBytes, "part file "+f.GetName())
		})
	}
	return g.Wait()
}

// usageOf is what an encode with choices used: encodeSeconds of wall time,
// on the GPU when a hardware encoder ran.
func usageOf(choices []ffmpeg.EncoderChoice, encodeSeconds, outputSeconds float64) *coordinatorv1.Usage {
	accel, gpu := apiv1.AcceleratorCPU, 0.0
	for _, c := range choices {
		if c.Hardware {
			accel, gpu = apiv1.AcceleratorNVIDIA, encodeSeconds
		}
	}
	return &coordinatorv1.Usage{EncodeSeconds: encodeSeconds, OutputSeconds: outputSeconds, Accelerator: accel, GpuSeconds: gpu}
}
