package ffmpeg

import (
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// storyboardSpec is a storyboard-only spec, normalized.
func storyboardSpec(sb encodespec.Storyboard) encodespec.Spec {
	s := encodespec.Spec{Storyboard: &sb}
	s.Normalize()
	return s
}

func TestStoryboard(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		source clip
		// input, when set, makes the input instead of source.
		input func(t *testing.T) string
		spec  encodespec.Spec
		// want* are computed by hand from the source, not by Layout.
		wantCues               int
		wantSheets             int
		wantSheetW, wantSheetH int
		wantTileW, wantTileH   int
		wantFirstCues          []string
		// checkFrames compares every tile with the frame FFmpeg decodes
		// at the cue's start, scaled alike.
		checkFrames bool
	}{
		"23 s at 5 s: 5 cues on one 5x1 sheet": {
			source:   clip{width: 320, height: 180, seconds: 23},
			spec:     storyboardSpec(encodespec.Storyboard{}), // defaults: 5 s, 160 px, 10x10
			wantCues: 5, wantSheets: 1, wantSheetW: 5 * 160, wantSheetH: 90, wantTileW: 160, wantTileH: 90,
			wantFirstCues: []string{
				"00:00:00.000 --> 00:00:05.000\nsheet-1.jpg#xywh=0,0,160,90",
				"00:00:05.000 --> 00:00:10.000\nsheet-1.jpg#xywh=160,0,160,90",
				"00:00:20.000 --> 00:00:23.000\nsheet-1.jpg#xywh=640,0,160,90",
			},
			checkFrames: true,
		},
		"MPEG-TS input, timestamps from 1.4 s": {
			source:   clip{width: 320, height: 180, seconds: 23, extra: []string{"-f", "mpegts"}},
			spec:     storyboardSpec(encodespec.Storyboard{}),
			wantCues: 5, wantSheets: 1, wantSheetW: 5 * 160, wantSheetH: 90, wantTileW: 160, wantTileH: 90,
			checkFrames: true,
		},
		"video stream starting 2 s after the audio": {
			input:    lateVideoClip,
			spec:     storyboardSpec(encodespec.Storyboard{}),
			wantCues: 3, wantSheets: 1, wantSheetW: 3 * 160, wantSheetH: 90, wantTileW: 160, wantTileH: 90,
			checkFrames: true,
		},
		"more tiles than one sheet holds: 2 sheets": {
			source:   clip{width: 320, height: 180, seconds: 7.2},
			spec:     storyboardSpec(encodespec.Storyboard{IntervalSeconds: 1, TileWidth: 64, Columns: 3, Rows: 2}),
			wantCues: 8, wantSheets: 2, wantSheetW: 3 * 64, wantSheetH: 2 * 36, wantTileW: 64, wantTileH: 36,
			wantFirstCues: []string{
				"00:00:05.000 --> 00:00:06.000\nsheet-1.jpg#xywh=128,36,64,36",
				"00:00:06.000 --> 00:00:07.000\nsheet-2.jpg#xywh=0,0,64,36",
				"00:00:07.000 --> 00:00:07.200\nsheet-2.jpg#xywh=64,0,64,36",
			},
		},
		"odd aspect: tile height from the aspect, even": {
			source:   clip{width: 320, height: 250, seconds: 4}, // 160 x 125 -> 126
			spec:     storyboardSpec(encodespec.Storyboard{IntervalSeconds: 2, Columns: 4, Rows: 4}),
			wantCues: 2, wantSheets: 1, wantSheetW: 2 * 160, wantSheetH: 126, wantTileW: 160, wantTileH: 126,
		},
		"tile narrower than asked on a small source": {
			source:   clip{width: 120, height: 68, seconds: 3},
			spec:     storyboardSpec(encodespec.Storyboard{IntervalSeconds: 1, TileWidth: 160}),
			wantCues: 3, wantSheets: 1, wantSheetW: 3 * 120, wantSheetH: 68, wantTileW: 120, wantTileH: 68,
		},
		"last interval starts after the last frame": {
			// 66 frames at 25 fps: the last at 2.60 s, the video ends at
			// 2.64 s; the third interval starts at 2.62 s, between them.
			source:   clip{width: 320, height: 180, seconds: 2.64},
			spec:     storyboardSpec(encodespec.Storyboard{IntervalSeconds: 1.31, TileWidth: 64}),
			wantCues: 3, wantSheets: 1, wantSheetW: 3 * 64, wantSheetH: 36, wantTileW: 64, wantTileH: 36,
			wantFirstCues: []string{"00:00:02.620 --> 00:00:02.640\nsheet-1.jpg#xywh=128,0,64,36"},
		},
		"beside an HLS ladder and thumbnails": {
			source: clip{width: 320, height: 180, seconds: 6, audio: true},
			spec: func() encodespec.Spec {
				s := smallSpec(encodespec.PackagingHLS)
				s.Thumbnails = &encodespec.Thumbnails{IntervalSeconds: 2, Width: 160, Poster: true}
				s.Storyboard = &encodespec.Storyboard{IntervalSeconds: 2, TileWidth: 96}
				s.Normalize()
				return s
			}(),
			wantCues: 3, wantSheets: 1, wantSheetW: 3 * 96, wantSheetH: 54, wantTileW: 96, wantTileH: 54,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, tt.spec.Validate())
			var input string
			if tt.input != nil {
				input = tt.input(t)
			} else {
				input = makeClip(t, tt.source)
			}
			res := encode(t, tt.spec, input) // runs Verify, which checks the index against the sheets

			var sheets []Output
			var index *Output
			for _, o := range res.outputs {
				switch o.Kind {
				case KindStoryboardSheet:
					sheets = append(sheets, o)
				case KindStoryboard:
					index = &o
				}
			}
			require.NotNil(t, index)
			require.Equal(t, "storyboard/storyboard.vtt", index.Name)
			require.Equal(t, "text/vtt", index.ContentType)
			require.Equal(t, map[string]string{
				"interval_seconds": formatFloat(tt.spec.Storyboard.IntervalSeconds),
				"tiles":            fmt.Sprint(tt.wantCues), "sheets": fmt.Sprint(tt.wantSheets),
				"tile_width": fmt.Sprint(tt.wantTileW), "tile_height": fmt.Sprint(tt.wantTileH),
				"columns": fmt.Sprint(tt.wantSheetW / tt.wantTileW), "rows": fmt.Sprint(tt.wantSheetH / tt.wantTileH),
			}, index.Attributes)
			require.Len(t, sheets, tt.wantSheets)
			for i, s := range sheets {
				require.Equal(t, fmt.Sprintf("storyboard/sheet-%d.jpg", i+1), s.Name)
				require.Equal(t, ContentTypeJPEG, s.ContentType)
			}

			vtt := readFile(t, res.cmd.OutDir, index.Name)
			require.True(t, strings.HasPrefix(vtt, "WEBVTT\n\n"), vtt)
			require.Equal(t, tt.wantCues, strings.Count(vtt, " --> "), vtt)
			require.Equal(t, int(math.Ceil(res.in.DurationSeconds/tt.spec.Storyboard.IntervalSeconds-1e-6)), tt.wantCues,
				"the case's expectation matches the probed duration %.3f s", res.in.DurationSeconds)
			for _, cue := range tt.wantFirstCues {
				require.Contains(t, vtt, "\n\n"+cue+"\n")
			}

			// Every cue's tile holds a picture (testsrc2 is never black),
			// consecutive tiles differ, and the slots after the last tile
			// are the tile filter's black padding: exactly wantCues frames
			// were tiled.
			cues, err := parseStoryboardVTT([]byte(vtt))
			require.NoError(t, err)
			imgs := map[string]image.Image{}
			for _, s := range sheets {
				imgs[filepath.Base(s.Name)] = decodeJPEG(t, filepath.Join(res.cmd.OutDir, s.Name))
				b := imgs[filepath.Base(s.Name)].Bounds()
				require.Equal(t, [2]int{tt.wantSheetW, tt.wantSheetH}, [2]int{b.Dx(), b.Dy()}, s.Name)
			}
			var prev [3]float64
			for i, c := range cues {
				img := imgs[c.file]
				require.NotNil(t, img, c.file)
				mean := meanColor(img, image.Rect(c.x, c.y, c.x+c.w, c.y+c.h))
				require.Greater(t, mean[0]+mean[1]+mean[2], 30.0, "cue %d's tile is black", i+1)
				if i > 0 {
					require.NotEqual(t, prev, mean, "cues %d and %d show the same picture", i, i+1)
				}
				prev = mean
			}
			if tt.checkFrames {
				refs := make([]image.Image, len(cues))
				for i, c := range cues {
					refs[i] = referenceFrame(t, input, c.start, c.w, c.h)
				}
				for i, c := range cues {
					tile := image.Rect(c.x, c.y, c.x+c.w, c.y+c.h)
					own := imageDiff(imgs[c.file], tile, refs[i])
					require.Less(t, own, 12.0, "cue %d's tile is not the frame at %.3f s", i+1, c.start)
					for _, j := range []int{i - 1, i + 1} {
						if j >= 0 && j < len(refs) {
							require.Less(t, own, imageDiff(imgs[c.file], tile, refs[j]), "cue %d's tile looks more like cue %d's frame", i+1, j+1)
						}
					}
				}
			}
			last := cues[len(cues)-1]
			img := imgs[last.file]
			for x, y := last.x+last.w, last.y; y < img.Bounds().Dy(); x, y = 0, y+tt.wantTileH {
				for ; x < img.Bounds().Dx(); x += tt.wantTileW {
					mean := meanColor(img, image.Rect(x, y, x+tt.wantTileW, y+tt.wantTileH))
					require.Less(t, mean[0]+mean[1]+mean[2], 10.0, "unused slot at %d,%d is not black padding", x, y)
				}
			}
		})
	}
}

func TestStoryboardVerifyCatchesTampering(t *testing.T) {
	t.Parallel()
	input := makeClip(t, clip{width: 320, height: 180, seconds: 7.2})
	spec := storyboardSpec(encodespec.Storyboard{IntervalSeconds: 1, TileWidth: 64, Columns: 3, Rows: 2})
	edit := func(old, new string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			name := filepath.Join(dir, "storyboard", "storyboard.vtt")
			b, err := os.ReadFile(name)
			require.NoError(t, err)
			require.Contains(t, string(b), old)
			require.NoError(t, os.WriteFile(name, []byte(strings.Replace(string(b), old, new, 1)), 0o644))
		}
	}
	tests := map[string]struct {
		tamper  func(t *testing.T, dir string)
		wantErr string
	}{
		"a cue missing": {
			tamper:  edit("\n00:00:07.000 --> 00:00:07.200\nsheet-2.jpg#xywh=64,0,64,36\n", ""),
			wantErr: "has 7 cues, want 8",
		},
		"tile outside its sheet": {
			tamper:  edit("sheet-2.jpg#xywh=64,0,64,36", "sheet-2.jpg#xywh=160,0,64,36"),
			wantErr: "cue 8's tile 160,0,64,36 does not lie inside storyboard/sheet-2.jpg (192x72)",
		},
		"gap between cues": {
			tamper:  edit("00:00:01.000 --> 00:00:02.000", "00:00:01.500 --> 00:00:02.000"),
			wantErr: "cue 2 covers 1.500-2.000 s, want 1.000-2.000 s",
		},
		"reference outside the directory": {
			tamper:  edit("sheet-1.jpg#xywh=0,0", "../../sheet-1.jpg#xywh=0,0"),
			wantErr: "points outside the output directory",
		},
		"not WebVTT": {
			tamper:  edit("WEBVTT", "WEBVTX"),
			wantErr: "storyboard/storyboard.vtt: no WEBVTT header",
		},
		"sheet of the wrong size": {
			tamper: func(t *testing.T, dir string) {
				f, err := os.Create(filepath.Join(dir, "storyboard", "sheet-2.jpg"))
				require.NoError(t, err)
				require.NoError(t, jpeg.Encode(f, image.NewRGBA(image.Rect(0, 0, 100, 72)), nil))
				require.NoError(t, f.Close())
			},
			wantErr: "storyboard sheet storyboard/sheet-2.jpg is 100x72, want 192x72",
		},
		"sheet missing": {
			tamper: func(t *testing.T, dir string) {
				require.NoError(t, os.Remove(filepath.Join(dir, "storyboard", "sheet-2.jpg")))
			},
			wantErr: "the storyboard has 1 sheets, want 2",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ffmpegBin, ffprobeBin := binaries(t)
			in := probeClip(t, input)
			cmd := plan(t, spec, in, input)
			require.NoError(t, Run(ctx, ffmpegBin, cmd, in.DurationSeconds, nil))
			tt.tamper(t, cmd.OutDir)
			outputs, err := Collect(cmd)
			require.NoError(t, err)
			err = Verify(ctx, ffprobeBin, cmd, outputs, in)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestPlanStoryboard(t *testing.T) {
	t.Parallel()
	spec := storyboardSpec(encodespec.Storyboard{IntervalSeconds: 2.5, TileWidth: 200, Columns: 4, Rows: 3})
	cmd, err := Plan(spec, source(1280, 720), "in.mp4", "/out", nil) // 30 s: 12 tiles, one full 4x3 sheet
	require.NoError(t, err)
	require.Equal(t, "[0:V:0]setpts=PTS-STARTPTS,tpad=stop_mode=clone:stop_duration=2.5,select='gte(t,selected_n*2.5)',"+
		"trim=end_frame=12,scale=w=200:h=112:flags=bicubic,setsar=1,tile=layout=4x3[storyboard]", argValue(cmd.Args, "-filter_complex"))
	require.Equal(t, []string{"storyboard"}, cmd.Dirs)
	require.Equal(t, "storyboard/sheet-%d.jpg", cmd.Args[len(cmd.Args)-1])
	require.Equal(t, []Output{
		{Name: "storyboard/sheet-1.jpg", Kind: KindStoryboardSheet, ContentType: ContentTypeJPEG, Width: 800, Height: 336},
		{Name: "storyboard/storyboard.vtt", Kind: KindStoryboard, ContentType: ContentTypeVTT, Attributes: map[string]string{
			"interval_seconds": "2.5", "tiles": "12", "sheets": "1", "tile_width": "200", "tile_height": "112", "columns": "4", "rows": "3",
		}},
	}, cmd.ExpectedOutputs)
	require.NotNil(t, cmd.Storyboard)
	require.Equal(t, 12, cmd.Storyboard.Tiles)
}

func TestPlanStoryboardTooTall(t *testing.T) {
	t.Parallel()
	in := source(100, 8000)
	in.DurationSeconds = 1000 // 200 tiles: 10 rows of 100x8000
	_, err := Plan(storyboardSpec(encodespec.Storyboard{}), in, "in.mp4", "/out", nil)
	var ie *InputError
	require.ErrorAs(t, err, &ie)
	require.Contains(t, ie.Msg, "the storyboard sheets would be 1000x80000 pixels")
}

func TestStoryboardVTTRoundTrip(t *testing.T) {
	t.Parallel()
	l := encodespec.Storyboard{IntervalSeconds: 1800, TileWidth: 64, Columns: 2, Rows: 2}.Layout(3*3600+0.25, 640, 360)
	data := formatStoryboardVTT(l)
	require.Contains(t, string(data), "\n\n03:00:00.000 --> 03:00:00.250\nsheet-2.jpg#xywh=0,36,64,36\n")
	cues, err := parseStoryboardVTT(data)
	require.NoError(t, err)
	require.Len(t, cues, l.Tiles)
	for i, c := range cues {
		start, end := l.Cue(i)
		sheet, x, y := l.Tile(i)
		require.Equal(t, vttCue{start: start, end: end, file: fmt.Sprintf("sheet-%d.jpg", sheet+1), x: x, y: y, w: 64, h: 36}, c)
	}

	bad := map[string]string{
		"no header":        "00:00.000 --> 00:01.000\na.jpg#xywh=0,0,1,1\n",
		"no fragment":      "WEBVTT\n\n00:00.000 --> 00:01.000\na.jpg\n",
		"short fragment":   "WEBVTT\n\n00:00.000 --> 00:01.000\na.jpg#xywh=0,0,1\n",
		"negative":         "WEBVTT\n\n00:00.000 --> 00:01.000\na.jpg#xywh=-1,0,1,1\n",
		"bad time":         "WEBVTT\n\n00:00.0 --> 00:01.000\na.jpg#xywh=0,0,1,1\n",
		"two text lines":   "WEBVTT\n\n00:00.000 --> 00:01.000\na.jpg#xywh=0,0,1,1\nb\n",
		"timing and no id": "WEBVTT\n\nx\n00:00.000 --> 00:01.000\n",
	}
	for name, doc := range bad {
		_, err := parseStoryboardVTT([]byte(doc))
		require.Error(t, err, name)
	}
	cues, err = parseStoryboardVTT([]byte("\ufeffWEBVTT\r\n\r\n1\r\n01:00.500 --> 01:01.000 align:start\r\nsheet-1.jpg#xywh=1,2,3,4\r\n"))
	require.NoError(t, err)
	require.Equal(t, []vttCue{{start: 60.5, end: 61, file: "sheet-1.jpg", x: 1, y: 2, w: 3, h: 4}}, cues)
}

// lateVideoClip is a 12 s clip whose video stream starts 2 s after its
// audio stream: the tiles count from the first video frame, as the probed
// duration does.
func lateVideoClip(t *testing.T) string {
	t.Helper()
	ffmpegBin, _ := binaries(t)
	src := makeClip(t, clip{width: 320, height: 180, seconds: 12, audio: true})
	out := filepath.Join(t.TempDir(), "late.mp4")
	b, err := exec.Command(ffmpegBin, "-nostdin", "-v", "error", "-y", "-itsoffset", "2", "-i", src, "-i", src,
		"-map", "0:v", "-map", "1:a", "-c", "copy", out).CombinedOutput()
	require.NoError(t, err, "%s", b)
	return out
}

// referenceFrame decodes the frame of input at seconds after its first
// video frame, scaled to w x h as the storyboard scales, through a PNG.
// setpts counts from the first video frame; -ss is an output option, so
// FFmpeg decodes from the start and drops what comes before (seeking the
// input lands on a keyframe in MPEG-TS).
func referenceFrame(t *testing.T, input string, seconds float64, w, h int) image.Image {
	t.Helper()
	ffmpegBin, _ := binaries(t)
	out := filepath.Join(t.TempDir(), "ref.png")
	b, err := exec.Command(ffmpegBin, "-nostdin", "-v", "error", "-y", "-i", input, "-ss", formatFloat(seconds),
		"-frames:v", "1", "-vf", fmt.Sprintf("setpts=PTS-STARTPTS,scale=w=%d:h=%d:flags=bicubic", w, h), out).CombinedOutput()
	require.NoError(t, err, "%s", b)
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	return img
}

// imageDiff is the mean absolute difference of 8-bit R, G and B between
// the rectangle r of img and ref (of r's size).
func imageDiff(img image.Image, r image.Rectangle, ref image.Image) float64 {
	var sum float64
	for y := 0; y < r.Dy(); y++ {
		for x := 0; x < r.Dx(); x++ {
			r1, g1, b1, _ := img.At(r.Min.X+x, r.Min.Y+y).RGBA()
			r2, g2, b2, _ := ref.At(ref.Bounds().Min.X+x, ref.Bounds().Min.Y+y).RGBA()
			sum += math.Abs(float64(r1>>8)-float64(r2>>8)) + math.Abs(float64(g1>>8)-float64(g2>>8)) + math.Abs(float64(b1>>8)-float64(b2>>8))
		}
	}
	return sum / float64(3*r.Dx()*r.Dy())
}

func decodeJPEG(t *testing.T, file string) image.Image {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	img, err := jpeg.Decode(f)
	require.NoError(t, err)
	return img
}

// meanColor is the mean 8-bit R, G, B of r in img.
func meanColor(img image.Image, r image.Rectangle) [3]float64 {
	var sum [3]float64
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			sum[0], sum[1], sum[2] = sum[0]+float64(cr>>8), sum[1]+float64(cg>>8), sum[2]+float64(cb>>8)
			n++
		}
	}
	for i := range sum {
		sum[i] /= float64(n)
	}
	return sum
}
