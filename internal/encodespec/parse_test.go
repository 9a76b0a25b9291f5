package encodespec

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	t.Parallel()

	raw := `{
		"renditions": [
			{"codec": "h264", "height": 720, "bitrate_kbps": 3000, "preset": "fast", "profile": "high", "max_fps": 30},
			{"name": "low", "codec": "hevc", "height": 360, "bitrate_kbps": 600}
		],
		"audio": {"codec": "opus", "channels": 2, "loudnorm": {"integrated_lufs": -16}},
		"packaging": "dash",
		"thumbnails": {"interval_seconds": 10, "poster": true}
	}`
	got, err := Parse([]byte(raw))
	require.NoError(t, err)

	want := Spec{
		Renditions: []Rendition{
			{Name: "720p", Codec: CodecH264, Height: 720, BitrateKbps: 3000, Preset: "fast", Profile: "high", MaxFPS: 30},
			{Name: "low", Codec: CodecHEVC, Height: 360, BitrateKbps: 600},
		},
		Audio:          &Audio{Codec: AudioOpus, BitrateKbps: 96, Channels: 2, Loudnorm: &Loudnorm{IntegratedLUFS: -16, TruePeakDB: -1, LRA: 7}},
		Packaging:      PackagingDASH,
		SegmentSeconds: 4,
		Thumbnails:     &Thumbnails{IntervalSeconds: 10, Width: 320, Poster: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()

	const ok = `"codec": "h264", "height": 720, "bitrate_kbps": 3000`
	tests := map[string]struct {
		raw      string
		fields   []string
		contains string
	}{
		"unknown top-level field": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "container": "ts"}`,
			fields:   []string{"container"},
			contains: "unknown field; allowed fields here: audio, chunking, conditioning, encryption, ladder, packaging, renditions, segment_seconds, storyboard, thumbnails",
		},
		"unknown rendition field": {
			raw:      `{"renditions": [{` + ok + `}, {` + ok + `, "bitrate": 5}], "packaging": "hls"}`,
			fields:   []string{"renditions[1].bitrate"},
			contains: "allowed fields here: bitrate_kbps, codec, crf, height, max_fps, name, preset, profile, width",
		},
		"unknown loudnorm field": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "audio": {"codec": "aac", "loudnorm": {"i": -23}}}`,
			fields:   []string{"audio.loudnorm.i"},
			contains: "allowed fields here: integrated_lufs, lra, true_peak_db",
		},
		"field names are case sensitive": {
			raw:      `{"renditions": [{` + ok + `, "Preset": "fast"}], "packaging": "hls"}`,
			fields:   []string{"renditions[0].Preset"},
			contains: "unknown field",
		},
		"raw ffmpeg arguments are not a field": {
			raw:      `{"renditions": [{` + ok + `, "ffmpeg_args": ["-vf", "x"]}], "packaging": "hls"}`,
			fields:   []string{"renditions[0].ffmpeg_args"},
			contains: "unknown field",
		},
		"duplicate field": {
			raw:      `{"renditions": [{` + ok + `, "codec": "vp9"}], "packaging": "hls"}`,
			fields:   []string{"renditions[0].codec"},
			contains: "more than once",
		},
		"height as string": {
			raw:      `{"renditions": [{"codec": "h264", "height": "720", "bitrate_kbps": 3000}], "packaging": "hls"}`,
			fields:   []string{"renditions[0].height"},
			contains: `must be a whole number, got the string "720"`,
		},
		"height with fraction": {
			raw:      `{"renditions": [{"codec": "h264", "height": 720.5, "bitrate_kbps": 3000}], "packaging": "hls"}`,
			fields:   []string{"renditions[0].height"},
			contains: "whole number",
		},
		"crf as object": {
			raw:      `{"renditions": [{"codec": "h264", "crf": {"value": 23}}], "packaging": "mp4"}`,
			fields:   []string{"renditions[0].crf"},
			contains: "must be a whole number, got an object",
		},
		"codec as number": {
			raw:      `{"renditions": [{"codec": 264, "bitrate_kbps": 3000}], "packaging": "hls"}`,
			fields:   []string{"renditions[0].codec"},
			contains: "must be a string, got the number 264",
		},
		"poster as string": {
			raw:      `{"thumbnails": {"poster": "yes"}}`,
			fields:   []string{"thumbnails.poster"},
			contains: "must be true or false",
		},
		"segment as string": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "segment_seconds": "4"}`,
			fields:   []string{"segment_seconds"},
			contains: "must be a number",
		},
		"renditions as object": {
			raw:      `{"renditions": {"codec": "h264"}, "packaging": "hls"}`,
			fields:   []string{"renditions"},
			contains: "must be an array, got an object",
		},
		"audio as array": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "audio": ["aac"]}`,
			fields:   []string{"audio"},
			contains: "must be an object, got an array",
		},
		"number out of range": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "segment_seconds": 1e999}`,
			fields:   []string{"segment_seconds"},
			contains: "out of range",
		},
		"several shape errors reported together": {
			raw:      `{"renditions": [{"codec": 1, "height": "x", "nope": {"a": [1, {}]}, "bitrate_kbps": 3000}], "packaging": "hls", "extra": 1}`,
			fields:   []string{"renditions[0].codec", "renditions[0].height", "renditions[0].nope", "extra"},
			contains: "must be a string",
		},
		"trailing data": {
			raw:      `{"thumbnails": {"poster": true}} {"x": 1}`,
			fields:   []string{""},
			contains: "unexpected data after the JSON object",
		},
		"trailing garbage": {
			raw:      `{"thumbnails": {"poster": true}}x`,
			fields:   []string{""},
			contains: "unexpected data after the JSON object",
		},
		"empty body": {
			raw:      ``,
			fields:   []string{""},
			contains: "empty body",
		},
		"not an object": {
			raw:      `["h264"]`,
			fields:   []string{""},
			contains: "expected a JSON object",
		},
		"truncated": {
			raw:      `{"renditions": [{"codec": "h264"`,
			fields:   []string{"renditions[0]"},
			contains: "malformed JSON",
		},
		"syntax error names where": {
			raw:      `{"renditions": [{"codec": "h264", "height": 72 0}]}`,
			fields:   []string{"renditions[0]"},
			contains: "malformed JSON at byte",
		},
		"NUL in a rendition name": {
			raw:      `{"renditions": [{` + ok + `}, {` + ok + `}, {"name": "low\u0000", ` + ok + `}], "packaging": "hls"}`,
			fields:   []string{"renditions[2].name"},
			contains: "NUL character",
		},
		"lone surrogate in a codec": {
			raw:      `{"renditions": [{"codec": "h264\ud800", "height": 720, "bitrate_kbps": 3000}], "packaging": "hls"}`,
			fields:   []string{"renditions[0].codec"},
			contains: "surrogate",
		},
		"invalid UTF-8 in a preset": {
			raw:      "{\"renditions\": [{" + ok + ", \"preset\": \"fast\xff\"}], \"packaging\": \"hls\"}",
			fields:   []string{"renditions[0].preset"},
			contains: "not valid UTF-8",
		},
		"int overflow": {
			raw:      `{"renditions": [{"codec": "h264", "height": 99999999999999999999, "bitrate_kbps": 3000}], "packaging": "hls"}`,
			fields:   []string{"renditions[0].height"},
			contains: "must be a whole number from",
		},
		"null document": {
			raw:      `null`,
			fields:   []string{""},
			contains: "expected a JSON object",
		},
		"packaging list of unknown formats": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": ["hls", "mp4"]}`,
			fields:   []string{"packaging"},
			contains: `got "[hls, mp4]"`,
		},
		"packaging list with a repeat": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": ["hls", "hls"]}`,
			fields:   []string{"packaging"},
			contains: `must be "mp4", "hls", "dash" or ["hls", "dash"]`,
		},
		"packaging of the wrong type": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": 2}`,
			fields:   []string{"packaging"},
			contains: "must be a string or an array, got the number 2",
		},
		"packaging list of numbers": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": ["hls", 2]}`,
			fields:   []string{"packaging[1]"},
			contains: "must be a string",
		},
		"vp9 with CMAF (HLS players)": {
			raw:      `{"renditions": [{"codec": "vp9", "height": 720, "bitrate_kbps": 3000}], "packaging": ["dash", "hls"]}`,
			fields:   []string{"renditions[0].codec"},
			contains: "vp9 is not allowed with hls + dash (cmaf) packaging",
		},
		"conditioning value": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "conditioning": {"deinterlace": "yadif"}}`,
			fields:   []string{"conditioning.deinterlace"},
			contains: `must be one of auto, on, off, got "yadif"`,
		},
		"ladder mode": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "ladder": {"mode": "per-title"}}`,
			fields:   []string{"ladder.mode"},
			contains: `must be one of fixed, per_title, got "per-title"`,
		},
		"ladder target as text": {
			raw:    `{"renditions": [{` + ok + `}], "packaging": "hls", "ladder": {"mode": "per_title", "target_psnr_db": "42"}}`,
			fields: []string{"ladder.target_psnr_db"},
		},
		"ladder field": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "ladder": {"mode": "per_title", "target_vmaf": 93}}`,
			fields:   []string{"ladder.target_vmaf"},
			contains: "unknown field",
		},
		"chunk too short": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "chunking": {"chunk_seconds": 2}}`,
			fields:   []string{"chunking.chunk_seconds"},
			contains: "must be 10 to 600 seconds, got 2",
		},
		"chunking without renditions": {
			raw:      `{"thumbnails": {"width": 160, "interval_seconds": 10}, "chunking": {"chunk_seconds": 60}}`,
			fields:   []string{"chunking"},
			contains: "this spec has none",
		},
		"chunking with per-title": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "ladder": {"mode": "per_title"}, "chunking": {"chunk_seconds": 60}}`,
			fields:   []string{"chunking"},
			contains: "does not choose a per-title ladder yet",
		},
		"chunking with encryption": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "encryption": {"method": "aes-128"}, "chunking": {"chunk_seconds": 60}}`,
			fields:   []string{"chunking"},
			contains: "does not encrypt yet",
		},
		"chunking threshold negative": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "chunking": {"chunk_seconds": 60, "min_input_seconds": -1}}`,
			fields:   []string{"chunking.min_input_seconds"},
			contains: "must be 0 (twice chunk_seconds)",
		},
		"chunking crf out of range": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "chunking": {"chunk_seconds": 60, "crf": 52}}`,
			fields:   []string{"chunking.crf"},
			contains: "must be 0 (23) to 51, got 52",
		},
		"chunking crf of the wrong type": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "chunking": {"chunk_seconds": 60, "crf": "high"}}`,
			fields:   []string{"chunking.crf"},
			contains: `must be a whole number, got the string "high"`,
		},
		"conditioning field": {
			raw:      `{"renditions": [{` + ok + `}], "packaging": "hls", "conditioning": {"hdr": "keep"}}`,
			fields:   []string{"conditioning.hdr"},
			contains: "allowed fields here: deinterlace, frame_rate, tone_map",
		},
		"valid shape, invalid values": {
			raw:      `{"renditions": [{"codec": "h264", "height": 720}], "packaging": "hls"}`,
			fields:   []string{"renditions[0].bitrate_kbps"},
			contains: "required for hls packaging",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse([]byte(tt.raw))
			errs := fieldErrors(t, err)
			assert.Equal(t, tt.fields, fields(errs))
			assert.Contains(t, detail(t, errs, tt.fields[0]), tt.contains)
			assert.Equal(t, Spec{}, s, "a failed Parse returns the zero Spec")
		})
	}
}

func TestParseNullMeansAbsent(t *testing.T) {
	t.Parallel()

	s, err := Parse([]byte(`{"renditions": [{"codec": "h264", "height": 720, "crf": null, "bitrate_kbps": 900}], "packaging": "hls", "audio": null}`))
	require.NoError(t, err)
	assert.Nil(t, s.Audio)
	assert.Nil(t, s.Renditions[0].CRF)
}

// A parsed spec survives a JSON round trip unchanged, which is how workflows
// are stored.
func TestParseRoundTrip(t *testing.T) {
	t.Parallel()

	for _, name := range BuiltinNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, ok := Builtin(name)
			require.True(t, ok)
			raw, err := json.Marshal(want)
			require.NoError(t, err)
			got, err := Parse(raw)
			require.NoError(t, err)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// Packaging is a string, or ["hls", "dash"] in either order (or "cmaf")
// for one set of CMAF segments; CMAF is stored as the list.
func TestParsePackaging(t *testing.T) {
	t.Parallel()
	const rendition = `"renditions": [{"codec": "h264", "height": 720, "bitrate_kbps": 3000}]`
	tests := map[string]Packaging{
		`"hls"`:           PackagingHLS,
		`["hls", "dash"]`: PackagingCMAF,
		`["dash", "hls"]`: PackagingCMAF,
		`"cmaf"`:          PackagingCMAF,
		`["dash"]`:        PackagingDASH,
		`["mp4"]`:         PackagingMP4,
	}
	for raw, want := range tests {
		t.Run(raw, func(t *testing.T) {
			t.Parallel()
			s, err := Parse([]byte(`{` + rendition + `, "packaging": ` + raw + `}`))
			require.NoError(t, err)
			assert.Equal(t, want, s.Packaging)
			stored, err := json.Marshal(s)
			require.NoError(t, err)
			var doc map[string]any
			require.NoError(t, json.Unmarshal(stored, &doc))
			if want == PackagingCMAF {
				assert.Equal(t, []any{"hls", "dash"}, doc["packaging"])
			} else {
				assert.Equal(t, string(want), doc["packaging"])
			}
		})
	}
}

// Chunking survives storage; its threshold defaults to two chunks.
func TestParseChunking(t *testing.T) {
	t.Parallel()
	s, err := Parse([]byte(`{"renditions": [{"codec": "h264", "height": 720, "bitrate_kbps": 3000}], "packaging": "hls", "chunking": {"chunk_seconds": 30}}`))
	require.NoError(t, err)
	require.NotNil(t, s.Chunking)
	assert.InDelta(t, 60, s.Chunking.Threshold(), 1e-9)
	raw, err := json.Marshal(s)
	require.NoError(t, err)
	again, err := Parse(raw)
	require.NoError(t, err)
	assert.Equal(t, s, again)
	again.Chunking.MinInputSeconds = 600
	assert.InDelta(t, 600, again.Chunking.Threshold(), 1e-9)
	assert.Equal(t, DefaultChunkCRF, s.Chunking.QualityCRF(), "capped CRF at x264's default unless set")
	again.Chunking.CRF = 28
	assert.Equal(t, 28, again.Chunking.QualityCRF())
	assert.InDelta(t, 60, s.Clone().Chunking.Threshold(), 1e-9, "a clone does not share the setting")
}

// A conditioning override is completed with "auto" and survives storage.
func TestParseConditioning(t *testing.T) {
	t.Parallel()
	s, err := Parse([]byte(`{"renditions": [{"codec": "h264", "height": 720, "bitrate_kbps": 3000}], "packaging": "mp4", "conditioning": {"tone_map": "off"}}`))
	require.NoError(t, err)
	require.NotNil(t, s.Conditioning)
	assert.Equal(t, Conditioning{Deinterlace: "auto", ToneMap: "off", FrameRate: "auto"}, *s.Conditioning)
	raw, err := json.Marshal(s)
	require.NoError(t, err)
	again, err := Parse(raw)
	require.NoError(t, err)
	assert.Equal(t, s, again)
}

// A per-title ladder gets the default target and survives storage; a
// ladder without a mode is fixed.
func TestParseLadder(t *testing.T) {
	t.Parallel()
	const renditions = `"renditions": [{"codec": "h264", "height": 720, "bitrate_kbps": 3000}], "packaging": "hls"`
	tests := map[string]struct {
		raw  string
		want Ladder
	}{
		"per_title default target": {raw: `{` + renditions + `, "ladder": {"mode": "per_title"}}`, want: Ladder{Mode: LadderPerTitle, TargetPSNRDB: DefaultTargetPSNRDB}},
		"per_title own target":     {raw: `{` + renditions + `, "ladder": {"mode": "per_title", "target_psnr_db": 38.5}}`, want: Ladder{Mode: LadderPerTitle, TargetPSNRDB: 38.5}},
		"empty ladder is fixed":    {raw: `{` + renditions + `, "ladder": {}}`, want: Ladder{Mode: LadderFixed}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse([]byte(tt.raw))
			require.NoError(t, err)
			require.NotNil(t, s.Ladder)
			assert.Equal(t, tt.want, *s.Ladder)
			raw, err := json.Marshal(s)
			require.NoError(t, err)
			again, err := Parse(raw)
			require.NoError(t, err)
			assert.Equal(t, s, again)
		})
	}
}

// A clone's ladder is its own: AnalyzePerTitle rewrites a clone.
func TestCloneLadder(t *testing.T) {
	t.Parallel()
	s := Spec{Ladder: &Ladder{Mode: LadderPerTitle, TargetPSNRDB: 40}}
	c := s.Clone()
	c.Ladder.TargetPSNRDB = 50
	assert.Equal(t, 40.0, s.Ladder.TargetPSNRDB)
}
