package ffmpeg

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// TestKeyframesAligned checks that every rendition has keyframes at the
// same instants, one per segment, and nowhere else, with B-frames on
// (preset medium) and a source whose scene changes every frame
// (testsrc2 moves), which would tempt a scene-cut detector.
func TestKeyframesAligned(t *testing.T) {
	t.Parallel()
	input := makeClip(t, clip{width: 320, height: 180, seconds: 3, audio: true})
	for _, packaging := range []encodespec.Packaging{encodespec.PackagingHLS, encodespec.PackagingDASH, encodespec.PackagingCMAF} {
		t.Run(string(packaging), func(t *testing.T) {
			t.Parallel()
			spec := smallSpec(packaging)
			spec.SegmentSeconds = 1
			for i := range spec.Renditions {
				spec.Renditions[i].Preset = "medium"
			}
			res := encode(t, spec, input)

			var tracks [][]string // each rendition's init + segments
			switch packaging {
			case encodespec.PackagingHLS:
				for _, name := range []string{"180p", "120p"} {
					pl, err := parseM3U8([]byte(readFile(t, res.cmd.OutDir, name+"/index.m3u8")))
					require.NoError(t, err)
					require.Len(t, pl.segments, 3, "one segment per second")
					files := []string{name + "/init.mp4"}
					for _, s := range pl.segments {
						files = append(files, name+"/"+s.uri)
					}
					tracks = append(tracks, files)
				}
			case encodespec.PackagingDASH, encodespec.PackagingCMAF:
				dash, err := parseMPD([]byte(readFile(t, res.cmd.OutDir, "manifest.mpd")))
				require.NoError(t, err)
				for _, tr := range dash[:2] {
					require.Len(t, tr.segments, 3, "one segment per second")
					tracks = append(tracks, append([]string{tr.init}, tr.segments...))
				}
			}

			first := keyframeTimes(t, res.cmd.OutDir, tracks[0])
			second := keyframeTimes(t, res.cmd.OutDir, tracks[1])
			require.Equal(t, first, second, "keyframes must be at the same instants in every rendition")
			require.Len(t, first, 3)
			for i, ts := range first {
				require.InDelta(t, float64(i), ts-first[0], 0.001, "keyframe %d of %v", i, first)
			}
		})
	}
}

// keyframeTimes returns the presentation times of the keyframes of the
// video track formed by files read in order.
func keyframeTimes(t *testing.T, dir string, files []string) []float64 {
	t.Helper()
	_, ffprobeBin := binaries(t)
	var readers []io.Reader
	for _, f := range files {
		fh, err := os.Open(filepath.Join(dir, filepath.FromSlash(f)))
		require.NoError(t, err)
		t.Cleanup(func() { fh.Close() })
		readers = append(readers, fh)
	}
	cmd := exec.CommandContext(context.Background(), ffprobeBin, "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", "-i", "pipe:0")
	cmd.Stdin = io.MultiReader(readers...)
	out, err := cmd.Output()
	require.NoError(t, err)
	var times []float64
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pts, flags, _ := strings.Cut(line, ",")
		if strings.Contains(flags, "K") {
			v, err := strconv.ParseFloat(pts, 64)
			require.NoError(t, err)
			times = append(times, v)
		}
	}
	return times
}
