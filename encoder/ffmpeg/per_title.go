package ffmpeg

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// Attributes that record on every video output of a per-title encode what
// the analysis chose and why (see AnalyzePerTitle).
const (
	// AttrPerTitleTarget is the target PSNR in dB.
	AttrPerTitleTarget = "per_title.target_psnr_db"
	// AttrPerTitleBitrate is the average bitrate the probes predict for
	// the rendition at the target.
	AttrPerTitleBitrate = "per_title.bitrate_kbps"
	// AttrPerTitleCRF is the CRF the rendition was encoded at (capped at
	// its ceiling); absent when it was encoded at the ceiling.
	AttrPerTitleCRF = "per_title.crf"
	// AttrPerTitleCeiling is the rendition's own bitrate_kbps: the
	// encode's maxrate is the fixed ladder's for it.
	AttrPerTitleCeiling = "per_title.ceiling_kbps"
	// AttrPerTitleReason says in words how the bitrate was found, or why
	// the analysis was not used.
	AttrPerTitleReason = "per_title.reason"
	// AttrPerTitleDropped lists the renditions the analysis dropped and
	// why; present only when it dropped some.
	AttrPerTitleDropped = "per_title.dropped"
)

const (
	// sampleWindows windows of sampleSeconds each, spread over the input,
	// are what the probe encodes; an input shorter than
	// wholeInputSeconds is probed whole.
	sampleWindows     = 3
	sampleSeconds     = 2.0
	wholeInputSeconds = sampleWindows * sampleSeconds * 2
	// probePreset is x264's preset for the probe encodes, faster than the
	// renditions' usual presets. At one CRF a slower preset gives about
	// the same quality with fewer bits, so the predicted bitrates are a
	// little high; near lossless (60 dB and up) far too high.
	probePreset = "veryfast"
	// firstProbeCRF is where the search starts: x264's default.
	firstProbeCRF = 23
	// maxProbes bounds the probe encodes per rendition.
	maxProbes = 4
	// psnrTolerance is how close to the target a probe must come to end
	// the search at once.
	psnrTolerance = 0.25
	// minRungStep is how many times cheaper than the next larger kept
	// rendition a rendition must be to be kept (1.25: at least 20 %
	// cheaper); a player switching between rungs closer than that gains
	// little.
	minRungStep = 1.25
	// minKbps is the lowest bitrate a spec accepts; lower predictions are
	// recorded as this.
	minKbps = 50
	// maxCRF is x264's highest CRF.
	maxCRF = 51.0
	// losslessPSNR stands for x264's "inf": above any target.
	losslessPSNR = 100.0
)

// PerTitle is what the per-title analysis decided for one input.
type PerTitle struct {
	// TargetPSNRDB is the spec's target.
	TargetPSNRDB float64
	// Rungs are the renditions of the spec fitted to the source, largest
	// first.
	Rungs []PerTitleRung
	// Failure is set when the analysis could not be used; the renditions'
	// own bitrates were then encoded.
	Failure string
}

// PerTitleRung is the decision for one rendition.
type PerTitleRung struct {
	Name          string
	Width, Height int
	// CeilingKbps is the rendition's own bitrate_kbps.
	CeilingKbps int
	// Kbps is the average bitrate the probes predict at the target, at
	// least 50 and at most CeilingKbps; 0 when Dropped.
	Kbps int
	// CRF is the constant-quality factor that reaches the target, which
	// the rendition is encoded with, capped at CeilingKbps; 0 when the
	// target needs more than the ceiling: the rendition is then encoded
	// at CeilingKbps as in a fixed ladder.
	CRF     float64
	Dropped bool
	// Reason says, in words, how Kbps was found or why the rung was
	// dropped.
	Reason string
	// Probes are the constant-quality encodes the choice came from.
	Probes []ProbePoint
}

// ProbePoint is one constant-quality probe encode of the sampled windows.
type ProbePoint struct {
	CRF  int
	PSNR float64 // x264's global PSNR, in dB, against the scaled source
	Kbps float64 // the probe's video bitrate
}

// x264Summary is the last line libx264 logs when asked for PSNR: the
// global PSNR of the whole encode and its bitrate.
var x264Summary = regexp.MustCompile(`PSNR Mean Y:\S+ U:\S+ V:\S+ Avg:\S+ Global:(\S+) kb/s:([0-9.]+)`)

// x264Bitrate is libx264's last line of a lossless encode, which has no
// PSNR.
var x264Bitrate = regexp.MustCompile(`\] kb/s:([0-9.]+)`)

// AnalyzePerTitle runs the per-title analysis a spec with ladder mode
// per_title asks for. For every rendition of the spec fitted to the
// source it encodes the sampled windows (sampleWindows of sampleSeconds,
// spread over the input; the whole input when it is short), conditioned
// and scaled as the encode will, with x264 at constant quality, and
// searches the CRF at which x264's PSNR reaches the target, and the
// average bitrate that takes. A rendition whose bitrate would exceed its
// own bitrate_kbps keeps it (no CRF). Renditions that would not be at
// least 20 % cheaper than the next larger one kept are dropped; the
// largest is always kept. It returns the spec fitted to the source
// without the dropped renditions, and the decisions; Plan encodes the
// first as the second says when given WithPerTitle.
func AnalyzePerTitle(ctx context.Context, ffmpegBin, inputFile string, in MediaInfo, spec encodespec.Spec) (encodespec.Spec, PerTitle, error) {
	if !spec.Ladder.PerTitle() {
		return spec, PerTitle{}, errors.New("per-title analysis: the spec's ladder is not per_title")
	}
	if err := spec.Validate(); err != nil {
		return spec, PerTitle{}, fmt.Errorf("per-title analysis: invalid encode spec: %w", err)
	}
	if !in.HasVideo || in.Width <= 0 || in.Height <= 0 || in.DurationSeconds <= 0 {
		return spec, PerTitle{}, errors.New("per-title analysis: the input has no probed video stream")
	}
	if !containerAllowed(in.Container) {
		return spec, PerTitle{}, refusedContainer(in.Container)
	}
	input, err := filepath.Abs(inputFile)
	if err != nil {
		return spec, PerTitle{}, fmt.Errorf("per-title analysis: input path: %w", err)
	}
	fitted := spec.ForSource(in.Width, in.Height)
	cond := condition(fitted.Conditioning, in)
	keyframes := mp4KeyframeSeconds
	if fitted.SegmentSeconds > 0 {
		keyframes = fitted.SegmentSeconds
	}

	pt := PerTitle{TargetPSNRDB: fitted.Ladder.TargetPSNRDB}
	for _, r := range fitted.Renditions {
		w, h := r.OutputSize(in.Width, in.Height)
		rung := PerTitleRung{Name: r.Name, Width: w, Height: h, CeilingKbps: r.BitrateKbps}
		probe := func(ctx context.Context, crf int) (ProbePoint, error) {
			args := probeArgs(input, in, cond, r, w, h, keyframes, crf)
			return probeEncode(ctx, ffmpegBin, args, crf)
		}
		c, err := searchBitrate(ctx, pt.TargetPSNRDB, r.BitrateKbps, probe)
		if err != nil {
			return spec, PerTitle{}, fmt.Errorf("per-title analysis of rendition %s: %w", r.Name, err)
		}
		rung.Kbps, rung.CRF, rung.Probes, rung.Reason = c.kbps, c.crf, c.points, c.reason
		pt.Rungs = append(pt.Rungs, rung)
	}
	pt.dropRedundant()

	out := fitted.Clone()
	out.Renditions = slices.DeleteFunc(out.Renditions, func(r encodespec.Rendition) bool {
		return slices.ContainsFunc(pt.Rungs, func(g PerTitleRung) bool { return g.Name == r.Name && g.Dropped })
	})
	return out, pt, nil
}

// probeArgs is the FFmpeg command of one probe encode: the sampled windows
// of the input, joined, conditioned, frame-rate capped and scaled as the
// rendition will be, encoded by x264 at crf with the rendition's keyframe
// placement, to nothing; x264 reports the PSNR and bitrate.
func probeArgs(input string, in MediaInfo, cond conditioning, r encodespec.Rendition, w, h int, keyframes float64, crf int) []string {
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "info"}
	windows := sampleStarts(in.DurationSeconds)
	length := sampleSeconds
	if len(windows) == 1 {
		length = in.DurationSeconds
	}
	var labels strings.Builder
	for i, start := range windows {
		args = append(args, inputOptions(in.Container)...)
		args = append(args, "-ss", formatFloat(start), "-t", formatFloat(length), "-i", "file:"+input)
		fmt.Fprintf(&labels, "[%d:V:0]", i)
	}
	chain := labels.String() + fmt.Sprintf("concat=n=%d:v=1:a=0", len(windows))
	if cond.chain != "" {
		chain += "," + cond.chain
	}
	fps := cond.fps
	if r.MaxFPS > 0 && (fps <= 0 || r.MaxFPS < fps) {
		chain += ",fps=fps=" + formatFloat(r.MaxFPS)
		fps = r.MaxFPS
	}
	if fps <= 0 {
		fps = defaultFrameRate
	}
	chain += fmt.Sprintf(",scale=w=%d:h=%d:flags=bicubic,setsar=1,format=yuv420p[probe]", w, h)
	gop := strconv.Itoa(max(1, int(math.Ceil(keyframes*fps-1e-6))))
	return append(args, "-filter_complex", chain, "-map", "[probe]",
		"-c:v", "libx264", "-preset", probePreset, "-crf", strconv.Itoa(crf),
		"-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
		"-force_key_frames", "expr:gte(t,n_forced*"+formatFloat(keyframes)+")",
		"-flags", "+psnr", "-an", "-sn", "-dn", "-f", "null", "-")
}

// sampleStarts are the start times of the sampled windows: centred in
// equal parts of the input, or the whole input (one window from 0) when
// it is short.
func sampleStarts(duration float64) []float64 {
	if duration < wholeInputSeconds {
		return []float64{0}
	}
	starts := make([]float64, sampleWindows)
	for i := range starts {
		centre := duration * (float64(i) + 0.5) / sampleWindows
		starts[i] = math.Round((centre-sampleSeconds/2)*1000) / 1000
	}
	return starts
}

// probeEncode runs one probe encode and reads x264's summary.
func probeEncode(ctx context.Context, ffmpegBin string, args []string, crf int) (ProbePoint, error) {
	var stderr bytes.Buffer
	cmd := command(ctx, ffmpegBin, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ProbePoint{}, fmt.Errorf("probe encode at crf %d: %w", crf, ctx.Err())
		}
		return ProbePoint{}, fmt.Errorf("probe encode at crf %d: %w: %s", crf, err, lastLines(stderr.Bytes(), 5))
	}
	m := x264Summary.FindSubmatch(stderr.Bytes())
	if m == nil && crf == 0 {
		// CRF 0 is lossless: x264 measures no PSNR, only the bitrate.
		if b := x264Bitrate.FindSubmatch(stderr.Bytes()); b != nil {
			m = [][]byte{nil, []byte("inf"), b[1]}
		}
	}
	if m == nil {
		return ProbePoint{}, fmt.Errorf("probe encode at crf %d: x264 printed no PSNR summary: %s", crf, lastLines(stderr.Bytes(), 5))
	}
	psnr, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil || math.IsInf(psnr, 1) {
		psnr = losslessPSNR // x264 says inf for a lossless encode
	}
	kbps, err := strconv.ParseFloat(string(m[2]), 64)
	if err != nil {
		return ProbePoint{}, fmt.Errorf("probe encode at crf %d: bitrate %q: %w", crf, m[2], err)
	}
	return ProbePoint{CRF: crf, PSNR: psnr, Kbps: kbps}, nil
}

// choice is what searchBitrate found for one rendition.
type choice struct {
	kbps   int
	crf    float64 // 0: encode at the ceiling
	points []ProbePoint
	reason string
}

// searchBitrate finds the CRF at which a rendition reaches target dB, and
// the average bitrate that takes, from constant-quality probes: it starts
// at CRF 23 and moves the CRF by the distance to the target (about a dB
// per step), then between the two probes around the target, for at most
// maxProbes encodes. It stops early when a probe lands within
// psnrTolerance of the target, falls short of it while already above the
// ceiling, or passes it below 50 kbps. CRF and log bitrate are
// interpolated linearly in PSNR between the probes around the target, or
// extrapolated from the nearest two when none is on the other side; when
// every probe is above the target, the one closest to it is taken. When
// the bitrate would exceed the ceiling the CRF is 0: the rendition is
// encoded at the ceiling. reason says how the choice was made.
func searchBitrate(ctx context.Context, target float64, ceiling int, probe func(context.Context, int) (ProbePoint, error)) (choice, error) {
	var points []ProbePoint
	crf := firstProbeCRF
	for len(points) < maxProbes {
		p, err := probe(ctx, crf)
		if err != nil {
			return choice{}, err
		}
		points = append(points, p)
		if math.Abs(p.PSNR-target) <= psnrTolerance ||
			(p.PSNR < target && p.Kbps >= float64(ceiling)) || // more than the ceiling buys
			(p.PSNR > target && p.Kbps <= minKbps) { // less than the floor would do
			break
		}
		next, ok := nextCRF(points, target)
		if !ok {
			break
		}
		crf = next
	}
	kbps := estimate(points, target, func(p ProbePoint) float64 { return math.Log(max(p.Kbps, 1e-3)) })
	kbps = math.Exp(kbps)
	crfAt := estimate(points, target, func(p ProbePoint) float64 { return float64(p.CRF) })
	if above, below := bracket(points, target); below == nil {
		// Every probe has quality to spare (the search stopped under the
		// bitrate floor or ran out of probes): do not trust a CRF
		// extrapolated past them.
		kbps, crfAt = above.Kbps, float64(above.CRF)
	}
	// At least 0.1: a CRF of 0 would read as "encode at the ceiling".
	crfAt = math.Round(min(max(crfAt, 0.1), maxCRF)*10) / 10
	best := points[0]
	for _, p := range points[1:] {
		if math.Abs(p.PSNR-target) < math.Abs(best.PSNR-target) {
			best = p
		}
	}
	probes := fmt.Sprintf("closest probe: crf %d, %.2f dB at %.0f kbps; %d probes", best.CRF, best.PSNR, best.Kbps, len(points))
	c := choice{points: points, kbps: int(math.Round(min(float64(ceiling), max(minKbps, kbps))))}
	switch {
	case kbps >= float64(ceiling):
		c.reason = fmt.Sprintf("at the rendition's %d kbps: reaching %g dB would take %.0f kbps (%s)", ceiling, target, kbps, probes)
	default:
		c.crf = crfAt
		c.reason = fmt.Sprintf("crf %s for %g dB, about %.0f kbps, capped at the rendition's %d kbps (%s)",
			formatFloat(crfAt), target, kbps, ceiling, probes)
	}
	return c, nil
}

// nextCRF picks the next CRF to probe: between the nearest probes on either
// side of the target when there are both (by linear interpolation), else a
// step of one CRF per dB away from the target (at least 1, at most 12). It
// answers false when the pick was probed already or the range is spent.
func nextCRF(points []ProbePoint, target float64) (int, bool) {
	above, below := bracket(points, target)
	var next int
	if above != nil && below != nil {
		if below.CRF-above.CRF <= 1 {
			return 0, false
		}
		f := (above.PSNR - target) / (above.PSNR - below.PSNR)
		next = above.CRF + int(math.Round(f*float64(below.CRF-above.CRF)))
		next = min(max(next, above.CRF+1), below.CRF-1)
	} else {
		last := points[len(points)-1]
		step := int(math.Round(last.PSNR - target))
		if step == 0 {
			step = int(math.Copysign(1, last.PSNR-target))
		}
		step = min(max(step, -12), 12)
		next = min(max(last.CRF+step, 0), 51)
	}
	if slices.ContainsFunc(points, func(p ProbePoint) bool { return p.CRF == next }) {
		return 0, false
	}
	return next, true
}

// bracket returns the probe nearest the target from above (the lowest
// PSNR at or above it) and from below (the highest PSNR under it); either
// may be nil.
func bracket(points []ProbePoint, target float64) (above, below *ProbePoint) {
	for i := range points {
		p := &points[i]
		if p.PSNR >= target && (above == nil || p.PSNR < above.PSNR) {
			above = p
		}
		if p.PSNR < target && (below == nil || p.PSNR > below.PSNR) {
			below = p
		}
	}
	return above, below
}

// estimate interpolates a quantity of the probes (value: the log of the
// bitrate, or the CRF) at target, linearly in PSNR, between the probes
// around it; with probes on one side only it extrapolates from the two
// nearest, and with a single probe (or two of equal PSNR) it assumes
// x264's rule of thumb of 6 dB per doubling of the bitrate, about one CRF
// step per dB.
func estimate(points []ProbePoint, target float64, value func(ProbePoint) float64) float64 {
	a, b := bracket(points, target)
	if a == nil || b == nil {
		sorted := slices.Clone(points)
		slices.SortFunc(sorted, func(x, y ProbePoint) int {
			return cmp.Compare(math.Abs(x.PSNR-target), math.Abs(y.PSNR-target))
		})
		if len(sorted) == 1 || sorted[0].PSNR == sorted[1].PSNR {
			p := sorted[0]
			// One probe one dB above another: the log bitrate is
			// ln 2 / 6 higher and the CRF one lower.
			slope := value(ProbePoint{CRF: p.CRF - 1, PSNR: p.PSNR + 1, Kbps: p.Kbps * math.Exp2(1.0/6)}) - value(p)
			return value(p) + slope*(target-p.PSNR)
		}
		a, b = &sorted[0], &sorted[1]
	}
	f := (target - b.PSNR) / (a.PSNR - b.PSNR)
	return value(*b) + f*(value(*a)-value(*b))
}

// dropRedundant orders the rungs largest first and drops each rung whose
// bitrate is not at least minRungStep times below the last kept one's; the
// largest is always kept.
func (pt *PerTitle) dropRedundant() {
	slices.SortStableFunc(pt.Rungs, func(a, b PerTitleRung) int { return b.Width*b.Height - a.Width*a.Height })
	last := -1
	for i := range pt.Rungs {
		r := &pt.Rungs[i]
		if last >= 0 && float64(r.Kbps)*minRungStep > float64(pt.Rungs[last].Kbps) {
			kept := pt.Rungs[last]
			r.Reason = fmt.Sprintf("dropped: at %d kbps it would save less than %d %% against %s's %d kbps (%s)",
				r.Kbps, int(math.Round((1-1/minRungStep)*100)), kept.Name, kept.Kbps, r.Reason)
			r.Kbps, r.CRF, r.Dropped = 0, 0, true
			continue
		}
		last = i
	}
}

// WithPerTitle makes Plan encode the renditions a per-title analysis kept
// as it decided, and record the decisions on every video output. With
// x264 a rendition is encoded at its CRF, capped at its own bitrate (the
// fixed ladder's maxrate and buffer), or at its own bitrate when the
// target needs more; another encoder (NVENC) gets the predicted bitrate
// instead, as x264's CRF means nothing to it. A failed analysis
// (PerTitleFailure) changes no rendition and is recorded as its reason.
func WithPerTitle(pt PerTitle) PlanOption {
	return func(p *planner) { p.perTitle = &pt }
}

// rung returns the decision for the rendition named name.
func (pt *PerTitle) rung(name string) (PerTitleRung, bool) {
	if pt == nil {
		return PerTitleRung{}, false
	}
	i := slices.IndexFunc(pt.Rungs, func(r PerTitleRung) bool { return r.Name == name && !r.Dropped })
	if i < 0 {
		return PerTitleRung{}, false
	}
	return pt.Rungs[i], true
}

// annotate records the decisions on the video outputs: the target, the
// rendition's CRF, predicted bitrate, ceiling and reason, and which
// renditions were dropped.
func (pt *PerTitle) annotate(outputs []Output) {
	var dropped []string
	for _, r := range pt.Rungs {
		if r.Dropped {
			dropped = append(dropped, r.Name+": "+r.Reason)
		}
	}
	for i, o := range outputs {
		if o.Kind != KindVideo {
			continue
		}
		if outputs[i].Attributes == nil {
			outputs[i].Attributes = map[string]string{}
		}
		attrs := outputs[i].Attributes
		if pt.Failure != "" {
			attrs[AttrPerTitleReason] = pt.Failure
			continue
		}
		attrs[AttrPerTitleTarget] = formatFloat(pt.TargetPSNRDB)
		if len(dropped) > 0 {
			attrs[AttrPerTitleDropped] = strings.Join(dropped, "; ")
		}
		if r, ok := pt.rung(o.Rendition); ok {
			attrs[AttrPerTitleBitrate] = strconv.Itoa(r.Kbps)
			attrs[AttrPerTitleCeiling] = strconv.Itoa(r.CeilingKbps)
			attrs[AttrPerTitleReason] = r.Reason
			if r.CRF > 0 {
				attrs[AttrPerTitleCRF] = formatFloat(r.CRF)
			}
		}
	}
}

// PerTitleFailure is the record of an analysis that failed: the encode
// then uses the renditions' own bitrates, and Annotate says so.
func PerTitleFailure(err error) PerTitle {
	return PerTitle{Failure: "analysis failed, the renditions' own bitrates were used: " + err.Error()}
}
