package encodespec

import (
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type size struct{ W, H int }

// outputSizes resolves every rendition of s for a source.
func outputSizes(s Spec, src size) []size {
	out := make([]size, len(s.Renditions))
	for i, r := range s.Renditions {
		w, h := r.OutputSize(src.W, src.H)
		out[i] = size{w, h}
	}
	return out
}

func names(s Spec) []string {
	out := make([]string, len(s.Renditions))
	for i, r := range s.Renditions {
		out[i] = r.Name
	}
	return out
}

func TestForSourceLadder(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		src   size
		names []string
		sizes []size
		kbps  []int
	}{
		"1080p keeps the whole ladder": {
			src:   size{1920, 1080},
			names: []string{"1080p", "720p", "480p", "360p"},
			sizes: []size{{1920, 1080}, {1280, 720}, {854, 480}, {640, 360}},
			kbps:  []int{5000, 3000, 1400, 800},
		},
		"4K never grows the top rung": {
			src:   size{3840, 2160},
			names: []string{"1080p", "720p", "480p", "360p"},
			sizes: []size{{1920, 1080}, {1280, 720}, {854, 480}, {640, 360}},
			kbps:  []int{5000, 3000, 1400, 800},
		},
		"720p drops 1080": {
			src:   size{1280, 720},
			names: []string{"720p", "480p", "360p"},
			sizes: []size{{1280, 720}, {854, 480}, {640, 360}},
			kbps:  []int{3000, 1400, 800},
		},
		"640x360 keeps only 360": {
			src:   size{640, 360},
			names: []string{"360p"},
			sizes: []size{{640, 360}},
			kbps:  []int{800},
		},
		"odd 1279x719 gets a near-source top rung": {
			src:   size{1279, 719},
			names: []string{"720p", "480p", "360p"},
			sizes: []size{{1278, 718}, {854, 480}, {640, 360}},
			kbps:  []int{2987, 1400, 800}, // 3000 * (1278*718)/(1280*720)
		},
		"540p gets a source-size rung": {
			src:   size{960, 540},
			names: []string{"720p", "480p", "360p"},
			sizes: []size{{960, 540}, {854, 480}, {640, 360}},
			kbps:  []int{1688, 1400, 800}, // 3000 * (960*540)/(1280*720)
		},
		"500p is too close to 480 for an extra rung": {
			src:   size{888, 500},
			names: []string{"480p", "360p"},
			sizes: []size{{852, 480}, {640, 360}},
			kbps:  []int{1400, 800},
		},
		"tiny source keeps one rung at source size": {
			src:   size{320, 180},
			names: []string{"360p"},
			sizes: []size{{320, 180}},
			kbps:  []int{200},
		},
		"portrait 1080x1920 keeps the whole ladder": {
			src:   size{1080, 1920},
			names: []string{"1080p", "720p", "480p", "360p"},
			sizes: []size{{1080, 1920}, {720, 1280}, {480, 854}, {360, 640}},
			kbps:  []int{5000, 3000, 1400, 800},
		},
		"portrait 360x640 never upscales": {
			src:   size{360, 640},
			names: []string{"360p"},
			sizes: []size{{360, 640}},
			kbps:  []int{800},
		},
	}
	for _, builtin := range []string{"hls-ladder", "dash-ladder"} {
		for name, tt := range tests {
			t.Run(builtin+"/"+name, func(t *testing.T) {
				t.Parallel()
				s, ok := Builtin(builtin)
				require.True(t, ok)

				got := s.ForSource(tt.src.W, tt.src.H)
				require.NoError(t, got.Validate())
				assert.Equal(t, tt.names, names(got))
				assert.Equal(t, tt.sizes, outputSizes(got, tt.src))
				var kbps []int
				for _, r := range got.Renditions {
					kbps = append(kbps, r.BitrateKbps)
				}
				assert.Equal(t, tt.kbps, kbps)
				for _, sz := range outputSizes(got, tt.src) {
					assert.LessOrEqual(t, sz.W, tt.src.W, "never upscales width")
					assert.LessOrEqual(t, sz.H, tt.src.H, "never upscales height")
				}

				if diff := cmp.Diff(got, got.ForSource(tt.src.W, tt.src.H)); diff != "" {
					t.Errorf("ForSource is not idempotent (-once +twice):\n%s", diff)
				}
			})
		}
	}
}

func TestForSourceSingleRendition(t *testing.T) {
	t.Parallel()

	s, _ := Builtin("mp4-720p")
	got := s.ForSource(640, 360)
	require.Len(t, got.Renditions, 1)
	r := got.Renditions[0]
	assert.Equal(t, "720p", r.Name, "the name survives the clamp")
	assert.Equal(t, 23, *r.CRF, "crf is unchanged")
	w, h := r.OutputSize(640, 360)
	assert.Equal(t, size{640, 360}, size{w, h})
}

func TestForSourceDoesNotShare(t *testing.T) {
	t.Parallel()

	s, _ := Builtin("hls-ladder")
	before := s.Clone()
	got := s.ForSource(320, 180)
	got.Renditions[0].Name = "x"
	got.Audio.Channels = 1
	if diff := cmp.Diff(before, s); diff != "" {
		t.Errorf("ForSource changed its receiver (-before +after):\n%s", diff)
	}
}

func TestForSourceThumbnails(t *testing.T) {
	t.Parallel()

	s, _ := Builtin("thumbnails")
	tests := map[string]struct {
		src   size
		width int
	}{
		"wide source keeps 320":   {src: size{1920, 1080}, width: 320},
		"narrow source limits it": {src: size{255, 144}, width: 254},
		"unknown size unchanged":  {src: size{0, 0}, width: 320},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := s.ForSource(tt.src.W, tt.src.H)
			require.NoError(t, got.Validate())
			assert.Equal(t, tt.width, got.Thumbnails.Width)
			assert.Empty(t, got.Renditions)
		})
	}
}

func TestOutputSize(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		r    Rendition
		src  size
		want size
	}{
		"height only":                 {r: Rendition{Height: 720}, src: size{1920, 1080}, want: size{1280, 720}},
		"width only":                  {r: Rendition{Width: 1280}, src: size{1920, 1080}, want: size{1280, 720}},
		"source size":                 {src: size{1920, 1080}, want: size{1920, 1080}},
		"odd source at source size":   {src: size{1279, 719}, want: size{1278, 718}},
		"odd source scaled":           {r: Rendition{Height: 360}, src: size{1279, 719}, want: size{640, 360}},
		"4:3 in a 16:9 box":           {r: Rendition{Height: 720, Width: 1280}, src: size{1440, 1080}, want: size{960, 720}},
		"21:9 in a 16:9 box":          {r: Rendition{Height: 720, Width: 1280}, src: size{2560, 1080}, want: size{1280, 540}},
		"portrait height is short":    {r: Rendition{Height: 720}, src: size{1080, 1920}, want: size{720, 1280}},
		"portrait width is long":      {r: Rendition{Width: 1280}, src: size{1080, 1920}, want: size{720, 1280}},
		"portrait odd":                {r: Rendition{Height: 480}, src: size{1079, 1919}, want: size{480, 854}},
		"square":                      {r: Rendition{Height: 480}, src: size{1080, 1080}, want: size{480, 480}},
		"never upscales":              {r: Rendition{Height: 1080}, src: size{1280, 720}, want: size{1280, 720}},
		"never upscales odd":          {r: Rendition{Height: 720}, src: size{1279, 719}, want: size{1278, 718}},
		"odd box is evened":           {r: Rendition{Height: 361}, src: size{1920, 1080}, want: size{640, 360}},
		"unknown source":              {r: Rendition{Height: 720}, src: size{0, 720}, want: size{0, 0}},
		"anamorphic rounding is even": {r: Rendition{Height: 480}, src: size{1920, 800}, want: size{1152, 480}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w, h := tt.r.OutputSize(tt.src.W, tt.src.H)
			assert.Equal(t, tt.want, size{w, h})
		})
	}
}

// TestOutputSizeProperties checks, over many source sizes and boxes, that
// output dimensions are even, never exceed the source or the box, keep the
// aspect ratio within rounding, and are stable when fed back as a box.
func TestOutputSizeProperties(t *testing.T) {
	t.Parallel()

	sources := []size{
		{1920, 1080}, {1279, 719}, {1080, 1920}, {719, 1279}, {1440, 1080}, {720, 576},
		{3840, 1608}, {853, 480}, {1001, 999}, {17, 4001}, {4096, 2160}, {640, 360}, {2, 2}, {3, 5},
	}
	boxes := []Rendition{
		{}, {Height: 1080}, {Height: 720}, {Height: 480}, {Height: 360}, {Height: 16},
		{Width: 1280}, {Width: 7680}, {Height: 720, Width: 1280}, {Height: 1080, Width: 1080},
		{Height: 4320, Width: 16}, {Height: 16, Width: 7680},
	}
	for _, src := range sources {
		for _, box := range boxes {
			t.Run(fmt.Sprintf("%dx%d/h%d_w%d", src.W, src.H, box.Height, box.Width), func(t *testing.T) {
				t.Parallel()
				w, h := box.OutputSize(src.W, src.H)
				require.Positive(t, w)
				require.Positive(t, h)
				assert.Zero(t, w%2, "width %d is even", w)
				assert.Zero(t, h%2, "height %d is even", h)
				assert.LessOrEqual(t, w, max(2, src.W))
				assert.LessOrEqual(t, h, max(2, src.H))

				short, long := min(w, h), max(w, h)
				if box.Height > 0 {
					assert.LessOrEqual(t, short, box.Height, "short side within box")
				}
				if box.Width > 0 {
					assert.LessOrEqual(t, long, box.Width, "long side within box")
				}

				// Aspect kept within rounding: each side is within one
				// pixel (plus a pixel for the source's odd-to-even floor)
				// of what the other side implies. Sizes at the 2 px floor
				// cannot keep any aspect and are skipped.
				if w > 2 && h > 2 {
					impliedW := float64(h) * float64(src.W) / float64(src.H)
					impliedH := float64(w) * float64(src.H) / float64(src.W)
					assert.True(t, math.Abs(float64(w)-impliedW) <= 2 || math.Abs(float64(h)-impliedH) <= 2,
						"%dx%d keeps the aspect of %dx%d", w, h, src.W, src.H)
				}
			})
		}
	}
}

func TestOutputSizeOddSourcesKeepAspect(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		src size
		r   Rendition
	}{
		"1279x719 source size": {src: size{1279, 719}},
		"1279x719 to 480":      {src: size{1279, 719}, r: Rendition{Height: 480}},
		"1080x1920 source":     {src: size{1080, 1920}},
		"1080x1920 to 720":     {src: size{1080, 1920}, r: Rendition{Height: 720}},
		"1080x1920 to 360":     {src: size{1080, 1920}, r: Rendition{Height: 360}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w, h := tt.r.OutputSize(tt.src.W, tt.src.H)
			assert.Zero(t, w%2)
			assert.Zero(t, h%2)
			// Width is within one pixel of the exact aspect-preserving width.
			exact := float64(h) * float64(tt.src.W) / float64(tt.src.H)
			assert.InDelta(t, exact, float64(w), 1.0, "%dx%d from %dx%d", w, h, tt.src.W, tt.src.H)
		})
	}
}
