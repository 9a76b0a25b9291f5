package ffmpeg

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
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
	// AttrPerTitleBitrate is the bitrate the rendition was encoded at.
	AttrPerTitleBitrate = "per_title.bitrate_kbps"
	// AttrPerTitleCeiling is the rendition's own bitrate_kbps, which the
	// chosen bitrate never exceeds.
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
	// probePreset is x264's preset for the probe encodes: faster than the
	// renditions' usual presets, so the bitrates it finds are slightly
	// generous (a slower preset reaches the same quality with fewer bits).
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
	// minKbps is the lowest bitrate a spec accepts.
	minKbps = 50
	// vbvSeconds is the encode's VBV buffer in seconds of its bitrate
	// (videoArgs: bufsize twice the bitrate). A bitrate whose buffer cannot
	// hold a keyframe starves the keyframes: content whose bits are nearly
	// all in its keyframes (a still picture) needs more than its average.
	// keyframeHeadroom is the room left for keyframes above the average
	// one.
	vbvSeconds       = 2.0
	keyframeHeadroom = 1.5
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
	// Kbps is the chosen bitrate; 0 when Dropped.
	Kbps    int
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
	// KeyframeKbits is the average size of the probe's keyframes.
	KeyframeKbits float64
}

// x264Summary is the last line libx264 logs when asked for PSNR: the
// global PSNR of the whole encode and its bitrate.
var x264Summary = regexp.MustCompile(`PSNR Mean Y:\S+ U:\S+ V:\S+ Avg:\S+ Global:(\S+) kb/s:([0-9.]+)`)

// x264Keyframes is libx264's line on the I frames: their count, average
// QP and average size in bytes.
var x264Keyframes = regexp.MustCompile(`frame I:\d+\s+Avg QP:\s*\S+\s+size:\s*(\d+)`)

// AnalyzePerTitle runs the per-title analysis a spec with ladder mode
// per_title asks for. For every rendition of the spec fitted to the
// source it encodes the sampled windows (sampleWindows of sampleSeconds,
// spread over the input; the whole input when it is short), conditioned
// and scaled as the encode will, with x264 at constant quality, and
// searches the CRF at which x264's PSNR reaches the target; the bitrate
// that takes, interpolated between the probes around the target, becomes
// the rendition's bitrate, never above its own. Renditions that would not
// be at least 20 % cheaper than the next larger one kept are dropped;
// the largest is always kept. It returns the rewritten spec, which Plan
// encodes, and the decisions, which PerTitle.Annotate records on the
// planned outputs.
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
		kbps, points, reason, err := searchBitrate(ctx, pt.TargetPSNRDB, r.BitrateKbps, probe)
		if err != nil {
			return spec, PerTitle{}, fmt.Errorf("per-title analysis of rendition %s: %w", r.Name, err)
		}
		rung.Kbps, rung.Probes, rung.Reason = kbps, points, reason
		pt.Rungs = append(pt.Rungs, rung)
	}
	pt.dropRedundant()

	out := fitted.Clone()
	out.Renditions = out.Renditions[:0]
	for _, r := range fitted.Renditions {
		i := slices.IndexFunc(pt.Rungs, func(g PerTitleRung) bool { return g.Name == r.Name })
		if pt.Rungs[i].Dropped {
			continue
		}
		r.BitrateKbps = pt.Rungs[i].Kbps
		out.Renditions = append(out.Renditions, r)
	}
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
	cmd := exec.CommandContext(ctx, ffmpegBin, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ProbePoint{}, fmt.Errorf("probe encode at crf %d: %w", crf, ctx.Err())
		}
		return ProbePoint{}, fmt.Errorf("probe encode at crf %d: %w: %s", crf, err, lastLines(stderr.Bytes(), 5))
	}
	m := x264Summary.FindSubmatch(stderr.Bytes())
	if m == nil {
		return ProbePoint{}, fmt.Errorf("probe encode at crf %d: x264 printed no PSNR summary: %s", crf, lastLines(stderr.Bytes(), 5))
	}
	psnr, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil || math.IsInf(psnr, 1) {
		psnr = encodespec.MaxTargetPSNRDB + 40 // x264 says inf for a lossless encode
	}
	kbps, err := strconv.ParseFloat(string(m[2]), 64)
	if err != nil {
		return ProbePoint{}, fmt.Errorf("probe encode at crf %d: bitrate %q: %w", crf, m[2], err)
	}
	var keyframe float64
	if k := x264Keyframes.FindSubmatch(stderr.Bytes()); k != nil {
		size, _ := strconv.ParseFloat(string(k[1]), 64)
		keyframe = size * 8 / 1000
	}
	return ProbePoint{CRF: crf, PSNR: psnr, Kbps: kbps, KeyframeKbits: keyframe}, nil
}

// searchBitrate finds the bitrate at which a rendition reaches target dB,
// from constant-quality probes: it starts at CRF 23 and moves the CRF by
// the distance to the target (about a dB per step), then between the two
// probes around the target, for at most maxProbes encodes. It stops early
// when a probe lands within psnrTolerance of the target, or falls short of
// it while already above the ceiling. The bitrate is interpolated between
// the probes around the target (log bitrate linear in PSNR), extrapolated
// from the nearest two when none is on the other side, raised when the
// encode's VBV buffer (vbvSeconds of the bitrate) could not hold the
// keyframes with keyframeHeadroom, and kept within 50 kbps and ceiling.
// reason says how it was found.
func searchBitrate(ctx context.Context, target float64, ceiling int, probe func(context.Context, int) (ProbePoint, error)) (int, []ProbePoint, string, error) {
	var points []ProbePoint
	crf := firstProbeCRF
	for len(points) < maxProbes {
		p, err := probe(ctx, crf)
		if err != nil {
			return 0, points, "", err
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
	kbps := estimate(points, target, func(p ProbePoint) float64 { return p.Kbps })
	keyframe := estimate(points, target, func(p ProbePoint) float64 { return p.KeyframeKbits })
	vbv := keyframe * keyframeHeadroom / vbvSeconds
	need := max(kbps, vbv)
	chosen := int(math.Round(min(float64(ceiling), max(minKbps, need))))
	best := points[0]
	for _, p := range points[1:] {
		if math.Abs(p.PSNR-target) < math.Abs(best.PSNR-target) {
			best = p
		}
	}
	probes := fmt.Sprintf("closest probe: crf %d, %.2f dB at %.0f kbps; %d probes", best.CRF, best.PSNR, best.Kbps, len(points))
	var reason string
	switch {
	case need >= float64(ceiling):
		reason = fmt.Sprintf("capped at the rendition's %d kbps: reaching %g dB would take %.0f kbps (%s)", ceiling, target, need, probes)
	case need < minKbps:
		reason = fmt.Sprintf("raised to the %d kbps floor: %g dB takes %.0f kbps (%s)", minKbps, target, need, probes)
	case vbv > kbps:
		reason = fmt.Sprintf("%g dB takes %.0f kbps on average, raised to %d kbps so a keyframe (%.0f kbit) fits the encode's %g s buffer with room to spare; below the rendition's %d kbps (%s)",
			target, kbps, chosen, keyframe, vbvSeconds, ceiling, probes)
	default:
		reason = fmt.Sprintf("%g dB takes %d kbps, below the rendition's %d kbps (%s)", target, chosen, ceiling, probes)
	}
	return chosen, points, reason, nil
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

// estimate interpolates a quantity of the probes (value: the bitrate or
// the keyframe size) at target, between the probes around it, its log
// linear in PSNR; with probes on one side only it extrapolates from the
// two nearest (or, with a single probe, assumes 6 dB per doubling, x264's
// rule of thumb). A quantity a probe lacks (0) gives 0.
func estimate(points []ProbePoint, target float64, value func(ProbePoint) float64) float64 {
	a, b := bracket(points, target)
	if a == nil || b == nil {
		sorted := slices.Clone(points)
		slices.SortFunc(sorted, func(x, y ProbePoint) int {
			return cmp.Compare(math.Abs(x.PSNR-target), math.Abs(y.PSNR-target))
		})
		if len(sorted) == 1 || sorted[0].PSNR == sorted[1].PSNR || value(sorted[1]) <= 0 {
			p := sorted[0]
			return max(0, value(p)) * math.Exp2((target-p.PSNR)/6)
		}
		a, b = &sorted[0], &sorted[1]
	}
	va, vb := value(*a), value(*b)
	if a.PSNR == b.PSNR || va <= 0 || vb <= 0 {
		return max(0, va, vb)
	}
	f := (target - b.PSNR) / (a.PSNR - b.PSNR)
	return math.Exp(math.Log(vb) + f*(math.Log(va)-math.Log(vb)))
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
			r.Kbps, r.Dropped = 0, true
			continue
		}
		last = i
	}
}

// Annotate records the decisions on the command's video outputs: the
// target, the rendition's chosen bitrate, its ceiling and the reason, and
// which renditions were dropped. A failed analysis is recorded as its
// reason alone.
func (pt PerTitle) Annotate(cmd *Command) {
	var dropped []string
	for _, r := range pt.Rungs {
		if r.Dropped {
			dropped = append(dropped, r.Name+": "+r.Reason)
		}
	}
	for i, o := range cmd.ExpectedOutputs {
		if o.Kind != KindVideo {
			continue
		}
		attrs := cmd.ExpectedOutputs[i].Attributes
		if attrs == nil {
			attrs = map[string]string{}
			cmd.ExpectedOutputs[i].Attributes = attrs
		}
		if pt.Failure != "" {
			attrs[AttrPerTitleReason] = pt.Failure
			continue
		}
		attrs[AttrPerTitleTarget] = formatFloat(pt.TargetPSNRDB)
		if len(dropped) > 0 {
			attrs[AttrPerTitleDropped] = strings.Join(dropped, "; ")
		}
		for _, r := range pt.Rungs {
			if r.Name == o.Rendition && !r.Dropped {
				attrs[AttrPerTitleBitrate] = strconv.Itoa(r.Kbps)
				attrs[AttrPerTitleCeiling] = strconv.Itoa(r.CeilingKbps)
				attrs[AttrPerTitleReason] = r.Reason
			}
		}
	}
}

// PerTitleFailure is the record of an analysis that failed: the encode
// then uses the renditions' own bitrates, and Annotate says so.
func PerTitleFailure(err error) PerTitle {
	return PerTitle{Failure: "analysis failed, the renditions' own bitrates were used: " + err.Error()}
}
