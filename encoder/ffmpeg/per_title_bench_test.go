package ffmpeg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// BenchmarkPerTitleSavings measures what per-title ladders save against
// the fixed ladder at equal quality of the top rendition. For each of four
// 12 s 1080p inputs of different complexity, made with FFmpeg (a still
// test card, slowly moving smooth gradients, a moving test pattern, the
// same pattern under heavy film grain), it encodes the built-in
// hls-ladder (1080/720/480/360 at 5000/3000/1400/800 kbps, x264 medium,
// no audio), measures the top rendition's PSNR and SSIM against the
// source with FFmpeg's psnr and ssim filters, then runs the per-title
// analysis with that PSNR as its target (so both top renditions aim at
// the same quality; within the spec's 30..80 dB) and encodes the
// ladder it chose. It reports, per input, the video bytes of each ladder
// (init and media segments of every rendition), the saving in percent,
// both top renditions' PSNR (dB) and SSIM, the rungs per-title kept and
// the analysis's wall seconds, and logs every rung's PSNR and bytes in
// both ladders. Run it with -benchtime=1x: an iteration encodes each
// input twice.
func BenchmarkPerTitleSavings(b *testing.B) {
	inputs := []struct{ name, source, filters string }{
		{"still", "smptehdbars=size=1920x1080:rate=25", ""},
		{"gradients", "gradients=size=1920x1080:rate=25:speed=0.02", ""},
		{"motion", "testsrc2=size=1920x1080:rate=25", ""},
		{"grain", "testsrc2=size=1920x1080:rate=25", "noise=alls=24:allf=t+u"},
	}
	for _, in := range inputs {
		b.Run("input="+in.name, func(b *testing.B) {
			input := perTitleInput(b, in.source, 12, in.filters)
			for b.Loop() {
				benchmarkPerTitle(b, input)
			}
		})
	}
}

func benchmarkPerTitle(b *testing.B, input string) {
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(b)
	in, err := Probe(ctx, ffprobeBin, input)
	require.NoError(b, err)

	fixed := builtin(b, "hls-ladder")
	fixed.Audio = nil
	fixedCmd := plan(b, fixed, in, input)
	require.NoError(b, Run(ctx, ffmpegBin, fixedCmd, in.DurationSeconds, nil))
	fixedBytes := videoBytes(b, fixedCmd)
	top := fixed.ForSource(in.Width, in.Height).Renditions[0]
	w, h := top.OutputSize(in.Width, in.Height)
	fixedPSNR, fixedSSIM := quality(b, filepath.Join(fixedCmd.OutDir, top.Name, "index.m3u8"), input, w, h)

	perTitle := fixed.Clone()
	target := min(max(round2(fixedPSNR), encodespec.MinTargetPSNRDB), encodespec.MaxTargetPSNRDB)
	perTitle.Ladder = &encodespec.Ladder{Mode: encodespec.LadderPerTitle, TargetPSNRDB: target}
	start := time.Now()
	chosen, pt, err := AnalyzePerTitle(ctx, ffmpegBin, input, in, perTitle)
	require.NoError(b, err)
	analysis := time.Since(start)
	ptCmd := plan(b, chosen, in, input, WithPerTitle(pt))
	require.NoError(b, Run(ctx, ffmpegBin, ptCmd, in.DurationSeconds, nil))
	ptBytes := videoBytes(b, ptCmd)
	ptPSNR, ptSSIM := quality(b, filepath.Join(ptCmd.OutDir, top.Name, "index.m3u8"), input, w, h)

	// Every rung of both ladders, for the record: the per-title rungs
	// below the top aim at the same target, not at the fixed rungs'
	// quality, so their PSNR is the price of their bytes.
	fixedRungs, ptRungs := rungBytes(b, fixedCmd), rungBytes(b, ptCmd)
	for _, r := range fixed.ForSource(in.Width, in.Height).Renditions {
		rw, rh := r.OutputSize(in.Width, in.Height)
		fp, _ := quality(b, filepath.Join(fixedCmd.OutDir, r.Name, "index.m3u8"), input, rw, rh)
		line := fmt.Sprintf("  %s fixed: %.2f dB, %d bytes", r.Name, fp, fixedRungs[r.Name])
		if n, ok := ptRungs[r.Name]; ok {
			pp, _ := quality(b, filepath.Join(ptCmd.OutDir, r.Name, "index.m3u8"), input, rw, rh)
			line += fmt.Sprintf("; per-title: %.2f dB, %d bytes", pp, n)
		} else {
			line += "; per-title: dropped"
		}
		b.Log(line)
	}

	var ladder []string
	for _, r := range pt.Rungs {
		if r.Dropped {
			ladder = append(ladder, r.Name+" dropped")
			continue
		}
		if r.CRF > 0 {
			ladder = append(ladder, fmt.Sprintf("%s crf %s (~%d kbps)", r.Name, formatFloat(r.CRF), r.Kbps))
		} else {
			ladder = append(ladder, fmt.Sprintf("%s %d kbps", r.Name, r.Kbps))
		}
	}
	b.Logf("target %.2f dB; per-title ladder: %s", target, strings.Join(ladder, ", "))
	for _, r := range pt.Rungs {
		b.Logf("  %s: %s", r.Name, r.Reason)
	}

	b.ReportMetric(float64(fixedBytes), "fixed-bytes")
	b.ReportMetric(float64(ptBytes), "per-title-bytes")
	b.ReportMetric(100*(1-float64(ptBytes)/float64(fixedBytes)), "saving-%")
	b.ReportMetric(fixedPSNR, "fixed-top-psnr-dB")
	b.ReportMetric(ptPSNR, "per-title-top-psnr-dB")
	b.ReportMetric(fixedSSIM, "fixed-top-ssim")
	b.ReportMetric(ptSSIM, "per-title-top-ssim")
	b.ReportMetric(float64(len(chosen.Renditions)), "per-title-rungs")
	b.ReportMetric(analysis.Seconds(), "analysis-s")
}

// videoBytes is the size of every video file the command wrote: each
// rendition's init segment and media segments.
func videoBytes(b *testing.B, cmd Command) int64 {
	b.Helper()
	var total int64
	for _, n := range rungBytes(b, cmd) {
		total += n
	}
	return total
}

// rungBytes is videoBytes per rendition.
func rungBytes(b *testing.B, cmd Command) map[string]int64 {
	b.Helper()
	outputs, err := Collect(cmd)
	require.NoError(b, err)
	sizes := map[string]int64{}
	for _, o := range outputs {
		if o.Kind != KindVideo {
			continue
		}
		st, err := os.Stat(filepath.Join(cmd.OutDir, filepath.FromSlash(o.Name)))
		require.NoError(b, err)
		sizes[o.Rendition] += st.Size()
	}
	return sizes
}

// round2 rounds to two decimals, the precision a target is written with.
func round2(v float64) float64 { return float64(int(v*100+0.5)) / 100 }
