package encodespec

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuiltinNames(t *testing.T) {
	t.Parallel()

	names := BuiltinNames()
	assert.Equal(t, []string{"cmaf-ladder", "dash-ladder", "hls-ladder", "mp4-720p", "thumbnails"}, names)
	assert.True(t, slices.IsSorted(names))
}

func TestBuiltins(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		packaging Packaging
		heights   []int
		thumbs    bool
	}{
		"mp4-720p":    {packaging: PackagingMP4, heights: []int{720}},
		"hls-ladder":  {packaging: PackagingHLS, heights: []int{1080, 720, 480, 360}},
		"dash-ladder": {packaging: PackagingDASH, heights: []int{1080, 720, 480, 360}},
		"cmaf-ladder": {packaging: PackagingCMAF, heights: []int{1080, 720, 480, 360}},
		"thumbnails":  {thumbs: true},
	}
	require.Len(t, tests, len(BuiltinNames()), "every builtin has a case")
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, ok := Builtin(name)
			require.True(t, ok)
			require.NoError(t, s.Validate())
			assert.Equal(t, tt.packaging, s.Packaging)
			var heights []int
			for _, r := range s.Renditions {
				heights = append(heights, r.Height)
			}
			assert.Equal(t, tt.heights, heights)
			assert.Equal(t, tt.thumbs, s.Thumbnails != nil)

			// Normalizing a builtin changes nothing: it is stored explicit.
			again := s.Clone()
			again.Normalize()
			assert.Equal(t, s, again)
		})
	}
}

func TestBuiltinUnknown(t *testing.T) {
	t.Parallel()

	_, ok := Builtin("hls")
	assert.False(t, ok)
}

// Changing a returned builtin must not leak into the next caller's copy.
func TestBuiltinIsUnshared(t *testing.T) {
	t.Parallel()

	a, _ := Builtin("mp4-720p")
	*a.Renditions[0].CRF = 40
	a.Renditions[0].Name = "changed"
	a.Audio.BitrateKbps = 32

	b, _ := Builtin("mp4-720p")
	assert.Equal(t, 23, *b.Renditions[0].CRF)
	assert.Equal(t, "720p", b.Renditions[0].Name)
	assert.Equal(t, 128, b.Audio.BitrateKbps)
}

// TestBuiltinJSON: each built-in workflow's JSON, made once, is what
// json.Marshal writes of Builtin's spec; each call gets its own bytes; an
// unknown name is none.
func TestBuiltinJSON(t *testing.T) {
	t.Parallel()
	for _, name := range BuiltinNames() {
		s, ok := Builtin(name)
		require.True(t, ok)
		want, err := json.Marshal(s)
		require.NoError(t, err)
		got, ok := BuiltinJSON(name)
		require.True(t, ok, name)
		assert.Equal(t, string(want), string(got), name)
		got[0] = 'x'
		again, _ := BuiltinJSON(name)
		assert.Equal(t, string(want), string(again), "%s: a caller's change to its bytes is its own", name)
	}
	got, ok := BuiltinJSON("no-such-workflow")
	assert.False(t, ok)
	assert.Nil(t, got)
}
