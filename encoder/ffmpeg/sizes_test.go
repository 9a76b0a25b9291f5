package ffmpeg

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// TestEvenSizesAndNoUpscaling encodes awkward sources through the HLS
// ladder; Verify (inside encode) probes each rendition's real frame size.
func TestEvenSizesAndNoUpscaling(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		source clip
		want   map[string]string
	}{
		"odd 1279x719": {clip{width: 1279, height: 719, seconds: 1},
			map[string]string{"720p": "1278x718", "480p": "854x480", "360p": "640x360"}},
		"portrait 720x1280": {clip{width: 720, height: 1280, seconds: 1},
			map[string]string{"720p": "720x1280", "480p": "480x854", "360p": "360x640"}},
		"640x360 gets no 480p, 720p or 1080p": {clip{width: 640, height: 360, seconds: 1},
			map[string]string{"360p": "640x360"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			input := makeClip(t, tt.source)
			res := encode(t, fast(builtin(t, "hls-ladder")), input)
			require.Empty(t, cmp.Diff(tt.want, renditionSizes(res.cmd)))
			for _, o := range res.outputs {
				require.Zero(t, o.Width%2, o.Name)
				require.Zero(t, o.Height%2, o.Name)
			}
		})
	}
}
