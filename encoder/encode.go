package encoder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/encoder/ffmpeg"
	"github.com/mpegflow/mpegflow/internal/caption"
	"github.com/mpegflow/mpegflow/internal/encodespec"
	"github.com/mpegflow/mpegflow/internal/netguard"
)

// verifyError marks outputs that failed verification (retryable once).
type verifyError struct{ err error }

func (e *verifyError) Error() string { return "output verification failed: " + e.err.Error() }
func (e *verifyError) Unwrap() error { return e.err }

// encode downloads, probes, encodes, verifies and uploads; it returns what
// Complete reports.
func (w *Worker) encode(ctx context.Context, log *slog.Logger, job *coordinatorv1.Job, dir string, progress func(float64)) ([]*coordinatorv1.Output, *coordinatorv1.Usage, error) {
	input := filepath.Join(dir, "input")
	if err := w.download(ctx, job.GetInputUrl(), job.GetInputPresigned(), input); err != nil {
		return nil, nil, err
	}
	info, err := ffmpeg.Probe(ctx, w.cfg.FFprobe, input)
	if err != nil {
		return nil, nil, err
	}
	spec, err := parseSpec(job.GetSpecJson(), info)
	if err != nil {
		return nil, nil, &ffmpeg.InputError{Msg: err.Error()}
	}
	captions, err := w.captions(ctx, job, dir, info.DurationSeconds)
	if err != nil {
		return nil, nil, err
	}
	if spec.Conditioning.Resolved().Deinterlace == encodespec.ConditionAuto && (info.FieldOrder == "" || info.FieldOrder == "unknown") {
		// A stream that does not say is looked at. One flagged progressive
		// is trusted: idet takes some sharp, fast synthetic patterns for
		// interlaced pictures, and deinterlacing progressive video blurs it.
		if info.DetectedFieldOrder, err = ffmpeg.DetectFieldOrder(ctx, w.cfg.FFmpeg, input, info); err != nil {
			log.WarnContext(ctx, "interlace detection failed; the stream's field order is trusted", slog.Any("error", err))
		}
	}
	// A long input of a spec with chunking becomes tasks for the pool's
	// pods; this attempt ends with the split.
	if err := w.maybeSplit(ctx, log, job, spec, info, input); err != nil {
		return nil, nil, err
	}
	choices, err := w.encoders(ctx, log, spec)
	if err != nil {
		return nil, nil, err
	}
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, nil, fmt.Errorf("output directory: %w", err)
	}
	opts := []ffmpeg.PlanOption{ffmpeg.WithCaptions(captions...)}
	if spec.Ladder.PerTitle() {
		chosen, pt, err := ffmpeg.AnalyzePerTitle(ctx, w.cfg.FFmpeg, input, info, spec)
		switch {
		case ctx.Err() != nil:
			return nil, nil, fmt.Errorf("per-title analysis: %w", ctx.Err())
		case err != nil:
			// The fixed ladder still makes a good encode; the outputs say
			// it was used.
			log.WarnContext(ctx, "per-title analysis failed; encoding the renditions' own bitrates (the outputs record per_title.reason)",
				slog.Any("error", err))
			pt = ffmpeg.PerTitleFailure(err)
		default:
			spec = chosen
		}
		opts = append(opts, ffmpeg.WithPerTitle(pt))
	}
	cmd, err := ffmpeg.Plan(spec, info, input, out, choices, opts...)
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	if err := ffmpeg.Run(ctx, w.cfg.FFmpeg, cmd, info.DurationSeconds, progress); err != nil {
		return nil, nil, err
	}
	encodeSeconds := time.Since(start).Seconds()
	files, err := ffmpeg.Collect(cmd)
	if err != nil {
		return nil, nil, err
	}
	if err := ffmpeg.Verify(ctx, w.cfg.FFprobe, cmd, files, info); err != nil {
		return nil, nil, &verifyError{err: err}
	}
	if err := encrypt(spec, job.GetContentKey(), cmd, files); err != nil {
		return nil, nil, err
	}
	if err := w.upload(ctx, job, out, files); err != nil {
		return nil, nil, err
	}
	return describe(out, files, choices), usageOf(choices, encodeSeconds, info.DurationSeconds), nil
}

// encoders chooses the encoder of every rendition's codec for this pod's
// accelerator, with the CPU encoder where the hardware one cannot run.
func (w *Worker) encoders(ctx context.Context, log *slog.Logger, spec encodespec.Spec) ([]ffmpeg.EncoderChoice, error) {
	codecs := make([]string, 0, len(spec.Renditions))
	for _, r := range spec.Renditions {
		codecs = append(codecs, r.Codec)
	}
	available, err := ffmpeg.AvailableEncoders(ctx, w.cfg.FFmpeg)
	if err != nil {
		return nil, err
	}
	choices, err := ffmpeg.ChooseEncoders(ctx, w.cfg.Accelerator, codecs, available, ffmpeg.DefaultProbeEncode(w.cfg.FFmpeg))
	if err != nil {
		return nil, err
	}
	for _, c := range choices {
		if c.Fallback != "" {
			log.WarnContext(ctx, "hardware encoder unavailable; using the CPU encoder (the job records encoder_fallback)",
				slog.String("codec", c.Codec), slog.String("encoder", c.Encoder), slog.String("reason", c.Fallback))
		}
	}
	return choices, nil
}

// captions downloads the job's caption files (at most caption.MaxPerJob,
// each at most caption.MaxBytes) into dir/captions and converts them to
// checked WebVTT (ffmpeg.ConvertCaptions), before anything is encoded: a
// file that cannot be used fails the job with an input error and no
// output is written.
func (w *Worker) captions(ctx context.Context, job *coordinatorv1.Job, dir string, durationSeconds float64) ([]ffmpeg.Caption, error) {
	given := job.GetCaptions()
	if len(given) == 0 {
		return nil, nil
	}
	if len(given) > caption.MaxPerJob {
		return nil, &ffmpeg.InputError{Msg: fmt.Sprintf("the job gives %d caption files; at most %d are converted", len(given), caption.MaxPerJob)}
	}
	cdir := filepath.Join(dir, "captions")
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return nil, fmt.Errorf("caption directory: %w", err)
	}
	files := make([]ffmpeg.Caption, len(given))
	for i, c := range given {
		file := filepath.Join(cdir, fmt.Sprintf("given_%d", i))
		if err := w.fetch(ctx, c.GetUrl(), c.GetPresigned(), file, caption.MaxBytes, fmt.Sprintf("caption file %d", i+1)); err != nil {
			return nil, err
		}
		files[i] = ffmpeg.Caption{File: file, Language: c.GetLanguage(), Format: c.GetFormat()}
	}
	return ffmpeg.ConvertCaptions(ctx, w.cfg.FFmpeg, files, durationSeconds, cdir)
}

// describe turns produced files into Complete's outputs; video outputs carry
// the encoder used and, when the GPU was not used, encoder_fallback; the
// storyboard index carries its grid (interval_seconds, tiles, sheets,
// tile_width, tile_height, columns, rows).
func describe(dir string, files []ffmpeg.Output, choices []ffmpeg.EncoderChoice) []*coordinatorv1.Output {
	byCodec := map[string]ffmpeg.EncoderChoice{}
	for _, c := range choices {
		byCodec[c.Codec] = c
	}
	outs := make([]*coordinatorv1.Output, 0, len(files))
	for _, f := range files {
		attrs := map[string]string{}
		maps.Copy(attrs, f.Attributes)
		if f.Rendition != "" {
			attrs["rendition"] = f.Rendition
		}
		if f.Width > 0 {
			attrs["width"], attrs["height"] = fmt.Sprint(f.Width), fmt.Sprint(f.Height)
		}
		if c, ok := byCodec[f.Codec]; ok && f.Kind == "video" {
			attrs["codec"], attrs["encoder"] = c.Codec, c.Encoder
			if c.Fallback != "" {
				attrs["encoder_fallback"] = c.Fallback
			}
		}
		var size int64
		if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.Name))); err == nil {
			size = st.Size()
		}
		outs = append(outs, &coordinatorv1.Output{Name: f.Name, Kind: f.Kind, ContentType: f.ContentType, SizeBytes: size, Attributes: attrs})
	}
	return outs
}

// download fetches the input: a presigned URL of MpegFlow's storage, or the
// customer's URL through the SSRF guard (a refused address is the input's
// fault: retrying cannot help). A 4xx answer, or a customer host name that
// does not exist, is the input's fault and not worth retrying; network
// trouble, DNS timeouts and 5xx are. DNS failures are reported without the
// resolver's address.
func (w *Worker) download(ctx context.Context, url string, presigned bool, dst string) error {
	return w.fetch(ctx, url, presigned, dst, w.cfg.MaxInputBytes, "input")
}

// fetch is download for a file of the job, what ("input", "caption file
// 2"), of at most limit bytes.
func (w *Worker) fetch(ctx context.Context, url string, presigned bool, dst string, limit int64, what string) error {
	client := w.cfg.InputHTTP
	if presigned {
		client = w.cfg.HTTP
	} else if u, err := neturl.Parse(url); err != nil {
		return &ffmpeg.InputError{Msg: "the " + what + " URL is not usable: " + err.Error()}
	} else if err := w.cfg.Guard.CheckScheme(u); err != nil {
		return &ffmpeg.InputError{Msg: "the " + what + " URL was " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return &ffmpeg.InputError{Msg: "the " + what + " URL is not usable: " + err.Error()}
	}
	resp, err := client.Do(req)
	if err != nil {
		if r := netguard.Refusal(err); r != nil {
			return &ffmpeg.InputError{Msg: "the " + what + " URL was " + r.Error()}
		}
		if de := netguard.DNSFailure(err); de != nil {
			if de.NotFound() && !presigned {
				return &ffmpeg.InputError{Msg: what + " host not found: " + de.Host}
			}
			return fmt.Errorf("download %s: %w", what, de) // without the resolver's address
		}
		return fmt.Errorf("download %s: %w", what, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return &ffmpeg.InputError{Msg: fmt.Sprintf("the %s URL answered %s", what, resp.Status)}
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("download %s: the %s URL answered %s", what, what, resp.Status)
	}
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("download %s: %w", what, err)
	}
	n, err := io.Copy(f, io.LimitReader(resp.Body, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", what, err)
	}
	if n > limit {
		return &ffmpeg.InputError{Msg: fmt.Sprintf("the %s is larger than the %d-byte limit", what, limit)}
	}
	if n == 0 {
		return &ffmpeg.InputError{Msg: "the " + what + " is empty (0 bytes)"}
	}
	return nil
}

// encrypt encrypts the verified outputs when the spec asks for it, with the
// key the claim brought. The key is never logged.
func encrypt(spec encodespec.Spec, key *coordinatorv1.ContentKey, cmd ffmpeg.Command, files []ffmpeg.Output) error {
	if spec.Encryption == nil {
		return nil
	}
	if key == nil || len(key.GetKid()) != 16 {
		return errors.New("the spec asks for encryption but the claim brought no content key; is the coordinator older than this encoder?")
	}
	p := ffmpeg.Protection{Method: spec.Encryption.Method, Key: key.GetKey(), KeyURI: key.GetKeyUri(), LicenseURI: key.GetLicenseUri()}
	copy(p.KID[:], key.GetKid())
	return ffmpeg.Encrypt(cmd, files, p)
}
