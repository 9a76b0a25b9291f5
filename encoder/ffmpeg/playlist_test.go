package ffmpeg

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestParseAttributes(t *testing.T) {
	t.Parallel()
	got := parseAttributes(`BANDWIDTH=1200,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="audio"`)
	require.Equal(t, map[string]string{
		"BANDWIDTH": "1200", "CODECS": "avc1.64001f,mp4a.40.2", "RESOLUTION": "1280x720", "AUDIO": "audio",
	}, got)
}

func TestExpandTemplate(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		tmpl, want string
	}{
		"number width": {"seg_$RepresentationID$_$Number%05d$.m4s", "seg_3_00042.m4s"},
		"plain number": {"$RepresentationID$/$Number$.m4s", "3/42.m4s"},
		"time":         {"t_$Time$.m4s", "t_90000.m4s"},
		"dollar":       {"a$$b", "a$b"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := expandTemplate(tt.tmpl, "3", 42, 90000)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	_, err := expandTemplate("$Bandwidth$", "3", 1, 0)
	require.Error(t, err)
}

func TestParseMPD(t *testing.T) {
	t.Parallel()
	mpdText := `<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">
 <Period>
  <AdaptationSet contentType="video">
   <Representation id="0"><SegmentTemplate initialization="init_$RepresentationID$.m4s" media="seg_$RepresentationID$_$Number%05d$.m4s" startNumber="1">
    <SegmentTimeline><S t="0" d="100" r="1"/><S d="50"/></SegmentTimeline></SegmentTemplate></Representation>
  </AdaptationSet>
  <AdaptationSet contentType="audio">
   <SegmentTemplate initialization="a_init.m4s" media="a_$Time$.m4s"><SegmentTimeline><S t="10" d="5" r="2"/></SegmentTimeline></SegmentTemplate>
   <Representation id="1"/>
  </AdaptationSet>
 </Period>
</MPD>`
	got, err := parseMPD([]byte(mpdText))
	require.NoError(t, err)
	want := []dashTrack{
		{id: "0", init: "init_0.m4s", segments: []string{"seg_0_00001.m4s", "seg_0_00002.m4s", "seg_0_00003.m4s"}},
		{id: "1", init: "a_init.m4s", segments: []string{"a_10.m4s", "a_15.m4s", "a_20.m4s"}},
	}
	require.Empty(t, cmp.Diff(want, got, cmp.AllowUnexported(dashTrack{})))
}

func TestResolveRef(t *testing.T) {
	t.Parallel()
	got, err := resolveRef("720p/index.m3u8", "seg_00001.m4s")
	require.NoError(t, err)
	require.Equal(t, "720p/seg_00001.m4s", got)
	got, err = resolveRef("master.m3u8", "audio/index.m3u8")
	require.NoError(t, err)
	require.Equal(t, "audio/index.m3u8", got)
	for _, bad := range []string{"https://cdn.example/seg.m4s", "/etc/passwd", "../../x.m4s", ""} {
		_, err := resolveRef("720p/index.m3u8", bad)
		require.Error(t, err, bad)
	}
}

func TestSegmentBitrates(t *testing.T) {
	t.Parallel()
	// Target 4 s: windows of 2..6 s count. The 1 s tail segment alone is
	// too short to count, but with its neighbour (5 s) it does.
	sizes := []int64{500_000, 1_000_000, 250_000}
	durations := []float64{4, 4, 1}
	peak, avg := segmentBitrates(sizes, durations, 4)
	require.Equal(t, 2_000_000, peak) // 1 MB over 4 s
	require.Equal(t, 1_555_556, avg)  // 1.75 MB over 9 s, rounded up

	// Shorter than half a target duration: the average is the peak.
	peak, avg = segmentBitrates([]int64{1000}, []float64{1}, 4)
	require.Equal(t, 8000, peak)
	require.Equal(t, 8000, avg)
}
