package ffmpeg

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// TestVerifyCatchesTampering encodes, breaks the output the way a bug or a
// full disk would, and checks Verify notices.
func TestVerifyCatchesTampering(t *testing.T) {
	t.Parallel()
	input := makeClip(t, clip{width: 320, height: 180, seconds: 3, audio: true})
	tests := map[string]struct {
		packaging encodespec.Packaging
		tamper    func(t *testing.T, dir string)
		wantErr   []string
	}{
		"missing segment": {
			packaging: encodespec.PackagingHLS,
			tamper: func(t *testing.T, dir string) {
				require.NoError(t, os.Remove(filepath.Join(dir, "180p", "seg_00001.m4s")))
			},
			wantErr: []string{"180p/index.m3u8 references 180p/seg_00001.m4s, which is not among the outputs"},
		},
		"missing DASH segment": {
			packaging: encodespec.PackagingDASH,
			tamper: func(t *testing.T, dir string) {
				require.NoError(t, os.Remove(filepath.Join(dir, "seg_2_00002.m4s")))
			},
			wantErr: []string{"manifest.mpd references seg_2_00002.m4s"},
		},
		"wrong-size rendition": {
			packaging: encodespec.PackagingMP4,
			tamper: func(t *testing.T, dir string) {
				small, err := os.ReadFile(filepath.Join(dir, "120p.mp4"))
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(dir, "180p.mp4"), small, 0o644))
			},
			wantErr: []string{"rendition 180p (180p.mp4): frame size 214x120, want 320x180"},
		},
		"playlist cut short": {
			packaging: encodespec.PackagingHLS,
			tamper: func(t *testing.T, dir string) {
				dropSegments(t, filepath.Join(dir, "120p", "index.m3u8"), "seg_00001", "seg_00002")
			},
			wantErr: []string{"rendition 120p (120p/init.mp4): video lasts 1.00 s, the input 3.00 s"},
		},
		"master playlist deleted": {
			packaging: encodespec.PackagingHLS,
			tamper: func(t *testing.T, dir string) {
				require.NoError(t, os.Remove(filepath.Join(dir, "master.m3u8")))
			},
			wantErr: []string{"expected output master.m3u8 is missing"},
		},
		"master playlist forgets a rendition": {
			packaging: encodespec.PackagingHLS,
			tamper: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "master.m3u8")
				data, err := os.ReadFile(p)
				require.NoError(t, err)
				lines := strings.Split(strings.TrimSpace(string(data)), "\n")
				require.NoError(t, os.WriteFile(p, []byte(strings.Join(lines[:len(lines)-2], "\n")+"\n"), 0o644))
			},
			wantErr: []string{"master.m3u8 does not reference rendition playlist 120p/index.m3u8"},
		},
		"CMAF playlist and MPD disagree": {
			packaging: encodespec.PackagingCMAF,
			tamper: func(t *testing.T, dir string) {
				// The playlist skips a segment the MPD lists: each file
				// still resolves, but the manifests describe two streams.
				dropSegments(t, filepath.Join(dir, "media_1.m3u8"), "seg_1_00002")
			},
			wantErr: []string{"media_1.m3u8 and manifest.mpd list different segments for init_1.m4s"},
		},
		"CMAF master forgets the audio": {
			packaging: encodespec.PackagingCMAF,
			tamper: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "master.m3u8")
				data, err := os.ReadFile(p)
				require.NoError(t, err)
				var kept []string
				for _, line := range strings.Split(string(data), "\n") {
					if !strings.HasPrefix(line, "#EXT-X-MEDIA:") {
						kept = append(kept, line)
					}
				}
				require.NoError(t, os.WriteFile(p, []byte(strings.Join(kept, "\n")), 0o644))
			},
			wantErr: []string{"master.m3u8 does not reference rendition playlist media_2.m3u8"},
		},
		"missing CMAF segment": {
			packaging: encodespec.PackagingCMAF,
			tamper: func(t *testing.T, dir string) {
				require.NoError(t, os.Remove(filepath.Join(dir, "seg_0_00003.m4s")))
			},
			wantErr: []string{"manifest.mpd references seg_0_00003.m4s", "media_0.m3u8 references seg_0_00003.m4s"},
		},
		"corrupt audio init segment": {
			packaging: encodespec.PackagingHLS,
			tamper: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "audio", "init.mp4"), []byte("garbage"), 0o644))
			},
			wantErr: []string{"probe audio/init.mp4"},
		},
	}
	// One clean, verified encode per packaging; each case tampers with a copy.
	clean := map[encodespec.Packaging]encodeResult{}
	for _, packaging := range []encodespec.Packaging{encodespec.PackagingMP4, encodespec.PackagingHLS, encodespec.PackagingDASH, encodespec.PackagingCMAF} {
		spec := smallSpec(packaging)
		if packaging != encodespec.PackagingMP4 {
			spec.SegmentSeconds = 1 // three segments to tamper with
		}
		clean[packaging] = encode(t, spec, input)
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, ffprobeBin := binaries(t)
			res := clean[tt.packaging]
			dir := filepath.Join(t.TempDir(), "out")
			require.NoError(t, os.CopyFS(dir, os.DirFS(res.cmd.OutDir)))
			res.cmd.OutDir = dir

			tt.tamper(t, dir)
			outputs, err := Collect(res.cmd)
			require.NoError(t, err)
			err = Verify(context.Background(), ffprobeBin, res.cmd, outputs, res.in)
			require.Error(t, err)
			for _, want := range tt.wantErr {
				require.ErrorContains(t, err, want)
			}
		})
	}
}

func TestCollect(t *testing.T) {
	t.Parallel()
	input := makeClip(t, clip{width: 320, height: 180, seconds: 3, audio: true})
	spec := smallSpec(encodespec.PackagingDASH)
	spec.SegmentSeconds = 1
	spec.Thumbnails = &encodespec.Thumbnails{IntervalSeconds: 1, Poster: true}
	spec.Normalize()
	res := encode(t, spec, input)

	byName := map[string]Output{}
	for _, o := range res.outputs {
		byName[o.Name] = o
	}
	require.Equal(t, Output{Name: "seg_1_00002.m4s", Kind: KindVideo, ContentType: ContentTypeSegment,
		Rendition: "120p", Width: 214, Height: 120, Codec: "h264"}, byName["seg_1_00002.m4s"])
	require.Equal(t, Output{Name: "seg_2_00001.m4s", Kind: KindAudio, ContentType: ContentTypeSegment,
		Rendition: "audio", Codec: "aac"}, byName["seg_2_00001.m4s"])
	require.Equal(t, Output{Name: "thumbs/thumb_00003.jpg", Kind: KindThumbnail, ContentType: ContentTypeJPEG,
		Width: 320, Height: 180}, byName["thumbs/thumb_00003.jpg"])
	require.NotContains(t, byName, "thumbs/thumb_00004.jpg", "3 s at one per second")
	require.Equal(t, KindPoster, byName["poster.jpg"].Kind)

	// Anything the plan cannot account for is refused.
	require.NoError(t, os.WriteFile(filepath.Join(res.cmd.OutDir, "stray.txt"), []byte("x"), 0o644))
	_, err := Collect(res.cmd)
	require.ErrorContains(t, err, "unexpected file stray.txt")
}

// dropSegments removes from a media playlist the segments whose names
// contain any of names, each with its EXTINF line.
func dropSegments(t *testing.T, playlist string, names ...string) {
	t.Helper()
	data, err := os.ReadFile(playlist)
	require.NoError(t, err)
	var kept []string
	for _, line := range strings.Split(string(data), "\n") {
		if slices.ContainsFunc(names, func(n string) bool { return strings.Contains(line, n) }) {
			kept = kept[:len(kept)-1] // its EXTINF
			continue
		}
		kept = append(kept, line)
	}
	require.NoError(t, os.WriteFile(playlist, []byte(strings.Join(kept, "\n")), 0o644))
}
