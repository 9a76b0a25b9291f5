package ffmpeg

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// modelProbe is a fake probe encoder for content whose PSNR falls by
// slope dB per CRF step from psnr0 at CRF 0 and whose bitrate halves every
// 6 CRF steps from kbps0; it counts its calls.
type modelProbe struct {
	psnr0, slope, kbps0 float64
	calls               int
}

func (m *modelProbe) psnr(crf float64) float64 { return m.psnr0 - m.slope*crf }
func (m *modelProbe) kbps(crf float64) float64 { return m.kbps0 * math.Exp2(-crf/6) }

func (m *modelProbe) probe(_ context.Context, crf int) (ProbePoint, error) {
	m.calls++
	return ProbePoint{CRF: crf, PSNR: m.psnr(float64(crf)), Kbps: m.kbps(float64(crf))}, nil
}

// crfAt is the CRF at which the model reaches target.
func (m *modelProbe) crfAt(target float64) float64 { return (m.psnr0 - target) / m.slope }

func TestSearchBitrate(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		model   modelProbe
		target  float64
		ceiling int
		// want is "truth" (bitrate within 3 % of the model's exact one,
		// CRF within 0.15), "ceiling" (encode at the ceiling, no CRF) or
		// "floor" (50 kbps recorded, the CRF of the last probe).
		want   string
		reason string
	}{
		"easy content, far below the ceiling": {model: modelProbe{psnr0: 60, slope: 0.6, kbps0: 4000}, target: 42, ceiling: 5000, want: "truth", reason: "crf 30 for 42 dB, about 125 kbps, capped at the rendition's 5000 kbps"},
		"hard content, one dB per step":       {model: modelProbe{psnr0: 58, slope: 1, kbps0: 40000}, target: 40, ceiling: 20000, want: "truth", reason: "capped at the rendition's 20000 kbps"},
		"steep content, target far up":        {model: modelProbe{psnr0: 70, slope: 1.4, kbps0: 9000}, target: 58, ceiling: 9000, want: "truth"},
		"needs more than the ceiling":         {model: modelProbe{psnr0: 50, slope: 1, kbps0: 60000}, target: 45, ceiling: 5000, want: "ceiling", reason: "at the rendition's 5000 kbps: reaching 45 dB would take"},
		"trivial content":                     {model: modelProbe{psnr0: 80, slope: 0.5, kbps0: 200}, target: 40, ceiling: 800, want: "floor"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := tt.model
			c, err := searchBitrate(context.Background(), tt.target, tt.ceiling, m.probe)
			require.NoError(t, err)
			assert.LessOrEqual(t, m.calls, maxProbes)
			assert.Len(t, c.points, m.calls)
			truth := m.crfAt(tt.target)
			switch tt.want {
			case "truth":
				assert.InEpsilon(t, m.kbps(truth), float64(c.kbps), 0.03, "points %+v", c.points)
				assert.InDelta(t, truth, c.crf, 0.15, "points %+v", c.points)
				assert.Less(t, c.kbps, tt.ceiling)
			case "ceiling":
				assert.Equal(t, tt.ceiling, c.kbps)
				assert.Zero(t, c.crf)
			case "floor":
				// The probe closest above the target, not a CRF
				// extrapolated past every probe.
				assert.Equal(t, minKbps, c.kbps)
				assert.Equal(t, float64(c.points[len(c.points)-1].CRF), c.crf, "points %+v", c.points)
				assert.GreaterOrEqual(t, m.psnr(c.crf), tt.target)
			}
			assert.Contains(t, c.reason, tt.reason)
		})
	}

	t.Run("probe failure", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("boom")
		_, err := searchBitrate(context.Background(), 42, 5000, func(context.Context, int) (ProbePoint, error) {
			return ProbePoint{}, boom
		})
		require.ErrorIs(t, err, boom)
	})
}

func TestDropRedundant(t *testing.T) {
	t.Parallel()
	rung := func(name string, h, kbps int) PerTitleRung {
		return PerTitleRung{Name: name, Width: h * 16 / 9, Height: h, Kbps: kbps, CeilingKbps: 2 * kbps, Reason: "probed"}
	}
	tests := map[string]struct {
		rungs []PerTitleRung
		kept  []string // largest first
	}{
		"well spaced, any order": {
			rungs: []PerTitleRung{rung("480p", 480, 900), rung("1080p", 1080, 4000), rung("720p", 720, 2000)},
			kept:  []string{"1080p", "720p", "480p"},
		},
		"middle rung too close to the top": {
			rungs: []PerTitleRung{rung("1080p", 1080, 1000), rung("720p", 720, 850), rung("480p", 480, 500)},
			kept:  []string{"1080p", "480p"},
		},
		"compared with the last kept rung, not the dropped one": {
			rungs: []PerTitleRung{rung("1080p", 1080, 1000), rung("720p", 720, 900), rung("480p", 480, 790)},
			kept:  []string{"1080p", "480p"},
		},
		"exactly 20 % below is kept": {
			rungs: []PerTitleRung{rung("1080p", 1080, 1000), rung("720p", 720, 800)},
			kept:  []string{"1080p", "720p"},
		},
		"all on the floor: the largest stays": {
			rungs: []PerTitleRung{rung("360p", 360, 50), rung("1080p", 1080, 50), rung("720p", 720, 50)},
			kept:  []string{"1080p"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pt := PerTitle{Rungs: tt.rungs}
			pt.dropRedundant()
			var kept []string
			for _, r := range pt.Rungs {
				if r.Dropped {
					assert.Zero(t, r.Kbps)
					assert.Contains(t, r.Reason, "dropped: ")
					assert.Contains(t, r.Reason, "(probed)")
					continue
				}
				assert.Positive(t, r.Kbps)
				kept = append(kept, r.Name)
			}
			assert.Equal(t, tt.kept, kept)
		})
	}
}

func TestSampleStarts(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		duration float64
		want     []float64
	}{
		"short input is probed whole": {duration: 11.9, want: []float64{0}},
		"three windows, centred":      {duration: 12, want: []float64{1, 5, 9}},
		"a long film":                 {duration: 5400, want: []float64{899, 2699, 4499}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, sampleStarts(tt.duration))
		})
	}
}

// perTitleInput makes a 640x360, 25 fps H.264 input of the given lavfi
// source and length, coded nearly losslessly so its own coding noise does
// not decide the outcome.
func perTitleInput(t testing.TB, source string, seconds float64, filters string) string {
	t.Helper()
	ffmpegBin, _ := binaries(t)
	out := filepath.Join(t.TempDir(), "in.mp4")
	args := []string{"-nostdin", "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", source,
		"-t", strconv.FormatFloat(seconds, 'f', -1, 64)}
	if filters != "" {
		args = append(args, "-vf", filters)
	}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "4", "-pix_fmt", "yuv420p", out)
	b, err := exec.Command(ffmpegBin, args...).CombinedOutput()
	require.NoError(t, err, "%s", b)
	return out
}

// quality measures the PSNR (average, dB) and SSIM (All) of distorted
// against source scaled to distorted's w x h, with FFmpeg's psnr and ssim
// filters.
func quality(t testing.TB, distorted, source string, w, h int) (psnr, ssim float64) {
	t.Helper()
	ffmpegBin, _ := binaries(t)
	graph := "[0:v]setpts=PTS-STARTPTS,setsar=1,split[d1][d2];" +
		"[1:v]setpts=PTS-STARTPTS,scale=w=" + strconv.Itoa(w) + ":h=" + strconv.Itoa(h) + ":flags=bicubic,setsar=1,format=yuv420p,split[r1][r2];" +
		"[d1][r1]psnr;[d2][r2]ssim"
	b, err := exec.Command(ffmpegBin, "-nostdin", "-hide_banner", "-nostats", "-i", distorted, "-i", source,
		"-filter_complex", graph, "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "%s", b)
	pm := regexp.MustCompile(`PSNR y:\S+ u:\S+ v:\S+ average:(\S+)`).FindSubmatch(b)
	sm := regexp.MustCompile(`SSIM Y:\S+ \S+ U:\S+ \S+ V:\S+ \S+ All:(\S+)`).FindSubmatch(b)
	require.NotNil(t, pm, "%s", b)
	require.NotNil(t, sm, "%s", b)
	psnr, err = strconv.ParseFloat(string(pm[1]), 64)
	require.NoError(t, err)
	ssim, err = strconv.ParseFloat(string(sm[1]), 64)
	require.NoError(t, err)
	return psnr, ssim
}

// videoKbps is the video stream's bitrate as ffprobe reads it.
func videoKbps(t testing.TB, file string) float64 {
	t.Helper()
	_, ffprobeBin := binaries(t)
	b, err := exec.Command(ffprobeBin, "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=bit_rate",
		"-of", "default=noprint_wrappers=1:nokey=1", file).CombinedOutput()
	require.NoError(t, err, "%s", b)
	bps, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	require.NoError(t, err, "%s", b)
	return bps / 1000
}

// TestPerTitle analyses inputs of different complexity made with FFmpeg,
// encodes the ladders the analysis chose and checks them with ffprobe and
// FFmpeg's psnr filter: a still picture gets far less than the fixed
// ladder's bitrates, film grain needs the fixed ladder's top bitrate, no
// rendition exceeds its own, the encoded top rendition reaches the target
// PSNR and stays near the chosen bitrate, and every video output records
// the decisions.
func TestPerTitle(t *testing.T) {
	t.Parallel()
	const target = 40.0
	tests := map[string]struct {
		source   string
		seconds  float64
		filters  string
		topBelow float64 // the top rung's chosen bitrate is under this share of its ceiling
		capped   bool    // the top rung needs its ceiling
	}{
		"still picture, sampled windows": {source: "smptehdbars=size=640x360:rate=25", seconds: 12.5, topBelow: 0.25},
		"moving pattern":                 {source: "testsrc2=size=640x360:rate=25", seconds: 6, topBelow: 0.9},
		"film grain":                     {source: "testsrc2=size=640x360:rate=25", seconds: 6, filters: "noise=alls=30:allf=t+u", capped: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ffmpegBin, ffprobeBin := binaries(t)
			input := perTitleInput(t, tt.source, tt.seconds, tt.filters)
			in, err := Probe(ctx, ffprobeBin, input)
			require.NoError(t, err)

			spec := encodespec.Spec{
				Renditions: []encodespec.Rendition{
					{Codec: encodespec.CodecH264, Height: 360, BitrateKbps: 1500, Preset: "veryfast"},
					{Codec: encodespec.CodecH264, Height: 240, BitrateKbps: 700, Preset: "veryfast"},
					{Codec: encodespec.CodecH264, Height: 144, BitrateKbps: 300, Preset: "veryfast"},
				},
				Packaging: encodespec.PackagingMP4,
				Ladder:    &encodespec.Ladder{Mode: encodespec.LadderPerTitle, TargetPSNRDB: target},
			}
			spec.Normalize()
			require.NoError(t, spec.Validate())

			chosen, pt, err := AnalyzePerTitle(ctx, ffmpegBin, input, in, spec)
			require.NoError(t, err)
			require.NoError(t, chosen.Validate())
			for _, r := range pt.Rungs {
				t.Logf("%s: %s; probes %+v", r.Name, r.Reason, r.Probes)
			}
			require.Len(t, pt.Rungs, 3)
			top := pt.Rungs[0]
			require.Equal(t, "360p", top.Name)
			require.False(t, top.Dropped)
			assert.Equal(t, target, pt.TargetPSNRDB)
			for _, r := range pt.Rungs {
				assert.LessOrEqual(t, r.Kbps, r.CeilingKbps, r.Name)
				assert.NotEmpty(t, r.Probes, r.Name)
				assert.LessOrEqual(t, len(r.Probes), maxProbes, r.Name)
				assert.NotEmpty(t, r.Reason, r.Name)
			}
			if tt.capped {
				assert.Equal(t, top.CeilingKbps, top.Kbps, top.Reason)
				assert.Zero(t, top.CRF, top.Reason)
				assert.Contains(t, top.Reason, "would take")
			} else {
				assert.Less(t, float64(top.Kbps), tt.topBelow*float64(top.CeilingKbps), top.Reason)
				assert.Positive(t, top.CRF, top.Reason)
			}
			// The rewritten spec holds exactly the kept rungs, with their
			// own bitrates: the caps.
			kept := map[string]PerTitleRung{}
			for _, r := range pt.Rungs {
				if !r.Dropped {
					kept[r.Name] = r
				}
			}
			require.Len(t, chosen.Renditions, len(kept))
			for _, r := range chosen.Renditions {
				require.Contains(t, kept, r.Name)
				assert.Equal(t, kept[r.Name].CeilingKbps, r.BitrateKbps, r.Name)
			}

			cmd := plan(t, chosen, in, input, WithPerTitle(pt))
			args := strings.Join(cmd.Args, " ")
			for i, c := range chosen.Renditions {
				// x264 gets the CRF under the fixed ladder's cap, or the
				// ceiling as its average bitrate.
				r := kept[c.Name]
				want := fmt.Sprintf("-b:v:%d %dk", i, r.CeilingKbps)
				if r.CRF > 0 {
					want = fmt.Sprintf("-crf:v:%d %s -maxrate:v:%d %dk", i, formatFloat(r.CRF), i, r.CeilingKbps*6/5)
				}
				assert.Contains(t, args, want, r.Name)
			}
			require.NoError(t, Run(ctx, ffmpegBin, cmd, in.DurationSeconds, nil))
			outputs, err := Collect(cmd)
			require.NoError(t, err)
			require.NoError(t, Verify(ctx, ffprobeBin, cmd, outputs, in))

			topFile := filepath.Join(cmd.OutDir, "360p.mp4")
			psnr, _ := quality(t, topFile, input, top.Width, top.Height)
			if tt.capped {
				assert.Less(t, psnr, target, "the analysis capped a rendition that reaches the target at its ceiling")
			} else {
				assert.GreaterOrEqual(t, psnr, target-1.0, "the top rendition misses the target")
			}
			got := videoKbps(t, topFile)
			t.Logf("top rendition: %.2f dB at %.0f kbps", psnr, got)
			assert.LessOrEqual(t, got, 1.2*float64(top.CeilingKbps), "the top rendition overshoots its cap")
			if !tt.capped {
				assert.LessOrEqual(t, got, 1.5*float64(top.Kbps), "the top rendition costs far more than predicted")
			}

			videos := 0
			for _, o := range cmd.ExpectedOutputs {
				if o.Kind != KindVideo {
					continue
				}
				videos++
				assert.Equal(t, "40", o.Attributes[AttrPerTitleTarget], o.Name)
				assert.Equal(t, strconv.Itoa(kept[o.Rendition].Kbps), o.Attributes[AttrPerTitleBitrate], o.Name)
				if crf := kept[o.Rendition].CRF; crf > 0 {
					assert.Equal(t, formatFloat(crf), o.Attributes[AttrPerTitleCRF], o.Name)
				} else {
					assert.NotContains(t, o.Attributes, AttrPerTitleCRF, o.Name)
				}
				assert.NotEmpty(t, o.Attributes[AttrPerTitleReason], o.Name)
				assert.NotEmpty(t, o.Attributes[AttrDeinterlace], "conditioning attributes are kept")
			}
			assert.Equal(t, len(kept), videos)
		})
	}
}

// A probe encode reads x264's summary, the lossless one (CRF 0, no PSNR
// measured) included.
func TestProbeEncode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(t)
	input := perTitleInput(t, "testsrc2=size=320x180:rate=25", 2, "")
	in, err := Probe(ctx, ffprobeBin, input)
	require.NoError(t, err)
	abs, err := filepath.Abs(input)
	require.NoError(t, err)
	r := encodespec.Rendition{Name: "180p", Codec: encodespec.CodecH264, Height: 180, BitrateKbps: 500}
	tests := map[string]struct {
		crf      int
		lossless bool
	}{
		"lossless": {crf: 0, lossless: true},
		"lossy":    {crf: 30},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, err := probeEncode(ctx, ffmpegBin, probeArgs(abs, in, condition(nil, in), r, 320, 180, 2, tt.crf), tt.crf)
			require.NoError(t, err)
			assert.Equal(t, tt.crf, p.CRF)
			assert.Positive(t, p.Kbps)
			if tt.lossless {
				assert.Equal(t, losslessPSNR, p.PSNR)
			} else {
				assert.Greater(t, p.PSNR, 25.0)
				assert.Less(t, p.PSNR, 60.0)
			}
		})
	}
}
