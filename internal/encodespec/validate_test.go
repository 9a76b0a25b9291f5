package encodespec

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validSpec is a valid, normalized spec the cases below break one field at a
// time.
func validSpec() Spec {
	s := Spec{
		Renditions: []Rendition{
			{Codec: CodecH264, Height: 720, BitrateKbps: 3000, Preset: "medium", Profile: "high"},
			{Codec: CodecHEVC, Height: 480, BitrateKbps: 1200, Preset: "slow", Profile: "main10"},
		},
		Audio:      &Audio{Codec: AudioAAC, BitrateKbps: 128, Channels: 2, Loudnorm: &Loudnorm{}},
		Packaging:  PackagingHLS,
		Thumbnails: &Thumbnails{IntervalSeconds: 5, Poster: true, PosterAtSeconds: 3},
	}
	s.Normalize()
	return s
}

func TestValidate(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		mutate func(*Spec)
		// fields are the exact field paths reported, in order; empty = valid.
		fields []string
		// contains is a substring of the first field's detail (what is allowed).
		contains string
	}{
		"valid base":   {mutate: func(*Spec) {}},
		"mp4 with crf": {mutate: func(s *Spec) { mp4CRF(s, CodecH264, 23) }},
		"av1 crf 63":   {mutate: func(s *Spec) { mp4CRF(s, CodecAV1, 63) }},
		"vp9 dash": {mutate: func(s *Spec) {
			s.Packaging = PackagingDASH
			s.Renditions[0].Codec = CodecVP9
			s.Renditions[0].Preset = "good"
			s.Renditions[0].Profile = "0"
		}},
		"av1 svt preset": {mutate: func(s *Spec) {
			s.Renditions[0].Codec = CodecAV1
			s.Renditions[0].Preset = "13"
			s.Renditions[0].Profile = "main"
		}},
		"no audio": {mutate: func(s *Spec) { s.Audio = nil }},
		"audio chosen by language and index": {mutate: func(s *Spec) {
			s.Audio.Languages, s.Audio.StreamIndexes = []string{"en", "fra", "pt-BR", "und"}, []int{0, 63}
		}},
		"hdr passthrough with hevc main10": {mutate: func(s *Spec) {
			s.Conditioning = &Conditioning{ToneMap: ConditionPassthrough}
			s.Conditioning.normalize()
		}},
		"hdr passthrough with av1 and no profile": {mutate: func(s *Spec) {
			s.Renditions[1] = Rendition{Codec: CodecAV1, Height: 480, BitrateKbps: 1200}
			s.Normalize()
			s.Conditioning = &Conditioning{ToneMap: ConditionPassthrough}
			s.Conditioning.normalize()
		}},
		"hdr passthrough with only h264": {
			mutate: func(s *Spec) {
				s.Renditions = s.Renditions[:1]
				s.Conditioning = &Conditioning{ToneMap: ConditionPassthrough}
				s.Conditioning.normalize()
			},
			fields:   []string{"conditioning.tone_map"},
			contains: "passthrough keeps HDR only in hevc or av1 renditions",
		},
		"hdr passthrough with hevc main": {
			mutate: func(s *Spec) {
				s.Renditions[1].Profile = "main"
				s.Conditioning = &Conditioning{ToneMap: ConditionPassthrough}
				s.Conditioning.normalize()
			},
			fields:   []string{"renditions[1].profile"},
			contains: "must be main10",
		},
		"audio language not a tag": {
			mutate:   func(s *Spec) { s.Audio.Languages = []string{"en", "-x-"} },
			fields:   []string{"audio.languages[1]"},
			contains: "must be a language tag",
		},
		"audio language twice": {
			mutate:   func(s *Spec) { s.Audio.Languages = []string{"en", "eng"} },
			fields:   []string{"audio.languages[1]"},
			contains: "has the base language en, as languages[0] has",
		},
		"audio language unknown": {
			mutate:   func(s *Spec) { s.Audio.Languages = []string{"xx"} },
			fields:   []string{"audio.languages[0]"},
			contains: "must be a language tag",
		},
		"audio index out of range and twice": {
			mutate: func(s *Spec) { s.Audio.StreamIndexes = []int{-1, 64, 3, 3} },
			fields: []string{"audio.stream_indexes[0]", "audio.stream_indexes[1]", "audio.stream_indexes[3]"},
		},
		"too many audio languages": {
			mutate:   func(s *Spec) { s.Audio.Languages = []string{"en", "fr", "de", "es", "it", "pt", "nl", "sv", "da"} },
			fields:   []string{"audio.languages"},
			contains: "at most 8",
		},
		"opus 6ch":         {mutate: func(s *Spec) { s.Audio = &Audio{Codec: AudioOpus, BitrateKbps: 510, Channels: 6} }},
		"source size":      {mutate: func(s *Spec) { s.Renditions[0].Height = 0 }},
		"width box":        {mutate: func(s *Spec) { s.Renditions[0].Width = 7680; s.Renditions[0].Height = 4320 }},
		"eight renditions": {mutate: func(s *Spec) { s.Renditions = nRenditions(8) }},
		"mp4 many renditions": {mutate: func(s *Spec) {
			s.Packaging, s.SegmentSeconds = PackagingMP4, 0
		}},
		"thumbnails only": {mutate: func(s *Spec) {
			s.Renditions, s.Audio, s.Packaging, s.SegmentSeconds = nil, nil, "", 0
		}},
		"storyboard only": {mutate: func(s *Spec) {
			s.Renditions, s.Audio, s.Packaging, s.SegmentSeconds, s.Thumbnails = nil, nil, "", 0, nil
			s.Storyboard = &Storyboard{IntervalSeconds: 2, TileWidth: 120, Columns: 5, Rows: 4}
		}},
		"storyboard widest sheet": {mutate: func(s *Spec) {
			s.Storyboard = &Storyboard{IntervalSeconds: 3600, TileWidth: 410, Columns: 19, Rows: 20} // 7790 px
		}},

		"per_title h264 ladder": {mutate: func(s *Spec) {
			s.Renditions[1].Codec, s.Renditions[1].Profile = CodecH264, "main"
			s.Ladder = &Ladder{Mode: LadderPerTitle, TargetPSNRDB: 42}
		}},
		"per_title lowest target": {mutate: func(s *Spec) {
			s.Renditions = s.Renditions[:1]
			s.Ladder = &Ladder{Mode: LadderPerTitle, TargetPSNRDB: 30}
		}},
		"per_title highest target": {mutate: func(s *Spec) {
			s.Renditions = s.Renditions[:1]
			s.Ladder = &Ladder{Mode: LadderPerTitle, TargetPSNRDB: 80}
		}},
		"fixed ladder": {mutate: func(s *Spec) { s.Ladder = &Ladder{Mode: LadderFixed} }},

		"ladder mode unknown": {
			mutate:   func(s *Spec) { s.Ladder = &Ladder{Mode: "auto"} },
			fields:   []string{"ladder.mode"},
			contains: `must be one of fixed, per_title, got "auto"`,
		},
		"ladder mode empty (not normalized)": {
			mutate:   func(s *Spec) { s.Ladder = &Ladder{} },
			fields:   []string{"ladder.mode"},
			contains: `got ""`,
		},
		"per_title target too low": {
			mutate: func(s *Spec) {
				s.Renditions = s.Renditions[:1]
				s.Ladder = &Ladder{Mode: LadderPerTitle, TargetPSNRDB: 29.9}
			},
			fields:   []string{"ladder.target_psnr_db"},
			contains: "must be from 30 to 80 dB, got 29.9",
		},
		"per_title target too high": {
			mutate: func(s *Spec) {
				s.Renditions = s.Renditions[:1]
				s.Ladder = &Ladder{Mode: LadderPerTitle, TargetPSNRDB: 80.1}
			},
			fields:   []string{"ladder.target_psnr_db"},
			contains: "must be from 30 to 80 dB, got 80.1",
		},
		"per_title target NaN": {
			mutate: func(s *Spec) {
				s.Renditions = s.Renditions[:1]
				s.Ladder = &Ladder{Mode: LadderPerTitle, TargetPSNRDB: math.NaN()}
			},
			fields:   []string{"ladder.target_psnr_db"},
			contains: "must be from 30 to 80 dB",
		},
		"target with fixed ladder": {
			mutate:   func(s *Spec) { s.Ladder = &Ladder{Mode: LadderFixed, TargetPSNRDB: 42} },
			fields:   []string{"ladder.target_psnr_db"},
			contains: `applies only to mode "per_title"`,
		},
		"per_title hevc rendition": {
			mutate:   func(s *Spec) { s.Ladder = &Ladder{Mode: LadderPerTitle, TargetPSNRDB: 42} },
			fields:   []string{"renditions[1].codec"},
			contains: `must be h264 with ladder mode per_title (the analysis probes with x264), got "hevc"`,
		},
		"per_title crf rendition": {
			mutate: func(s *Spec) {
				mp4CRF(s, CodecH264, 23)
				s.Renditions = s.Renditions[:1]
				s.Ladder = &Ladder{Mode: LadderPerTitle, TargetPSNRDB: 42}
			},
			fields:   []string{"renditions[0].crf"},
			contains: "ladder mode per_title needs bitrate_kbps (50 to 100000) instead of crf",
		},
		"per_title without renditions": {
			mutate: func(s *Spec) {
				s.Renditions, s.Audio, s.Packaging, s.SegmentSeconds = nil, nil, "", 0
				s.Ladder = &Ladder{Mode: LadderPerTitle, TargetPSNRDB: 42}
			},
			fields:   []string{"ladder.mode"},
			contains: "per_title needs at least one rendition",
		},

		"wrong codec": {
			mutate:   func(s *Spec) { s.Renditions[1].Codec = "mpeg2"; s.Renditions[1].Preset = "nonsense" },
			fields:   []string{"renditions[1].codec"}, // no preset noise for an unknown codec
			contains: "must be one of h264, hevc, av1, vp9",
		},
		"missing codec": {
			mutate:   func(s *Spec) { s.Renditions[0].Codec = "" },
			fields:   []string{"renditions[0].codec"},
			contains: "required: one of h264, hevc, av1, vp9",
		},
		"codec case matters": {
			mutate:   func(s *Spec) { s.Renditions[0].Codec = "H264" },
			fields:   []string{"renditions[0].codec"},
			contains: `got "H264"`,
		},
		"both bitrate and crf": {
			mutate:   func(s *Spec) { mp4CRF(s, CodecH264, 23); s.Renditions[0].BitrateKbps = 2000 },
			fields:   []string{"renditions[0].crf"},
			contains: "either bitrate_kbps or crf, not both",
		},
		"neither bitrate nor crf mp4": {
			mutate:   func(s *Spec) { mp4CRF(s, CodecAV1, 30); s.Renditions[0].CRF = nil },
			fields:   []string{"renditions[0].bitrate_kbps"},
			contains: "set bitrate_kbps (50 to 100000) or crf (0 to 63 for av1)",
		},
		"neither bitrate nor crf hls": {
			mutate:   func(s *Spec) { s.Renditions[1].BitrateKbps = 0 },
			fields:   []string{"renditions[1].bitrate_kbps"},
			contains: "required for hls packaging",
		},
		"crf with hls": {
			mutate:   func(s *Spec) { s.Renditions[0].BitrateKbps = 0; s.Renditions[0].CRF = new(23) },
			fields:   []string{"renditions[0].crf"},
			contains: "hls packaging needs bitrate_kbps",
		},
		"crf with dash": {
			mutate: func(s *Spec) {
				s.Packaging = PackagingDASH
				s.Renditions[0].BitrateKbps = 0
				s.Renditions[0].CRF = new(23)
			},
			fields:   []string{"renditions[0].crf"},
			contains: "dash packaging needs bitrate_kbps",
		},
		"bitrate too low": {
			mutate:   func(s *Spec) { s.Renditions[0].BitrateKbps = 49 },
			fields:   []string{"renditions[0].bitrate_kbps"},
			contains: "must be from 50 to 100000 kbps, got 49",
		},
		"bitrate too high": {
			mutate:   func(s *Spec) { s.Renditions[0].BitrateKbps = 100_001 },
			fields:   []string{"renditions[0].bitrate_kbps"},
			contains: "must be from 50 to 100000 kbps",
		},
		"h264 crf 52": {
			mutate:   func(s *Spec) { mp4CRF(s, CodecH264, 52) },
			fields:   []string{"renditions[0].crf"},
			contains: "must be from 0 to 51 for h264",
		},
		"vp9 crf 64": {
			mutate:   func(s *Spec) { mp4CRF(s, CodecVP9, 64) },
			fields:   []string{"renditions[0].crf"},
			contains: "must be from 0 to 63 for vp9",
		},
		"negative crf": {
			mutate:   func(s *Spec) { mp4CRF(s, CodecHEVC, -1) },
			fields:   []string{"renditions[0].crf"},
			contains: "must be from 0 to 51 for hevc",
		},
		"h264 preset placebo": {
			mutate:   func(s *Spec) { s.Renditions[0].Preset = "placebo" },
			fields:   []string{"renditions[0].preset"},
			contains: "must be one of ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow for h264",
		},
		"hevc preset from vp9": {
			mutate:   func(s *Spec) { s.Renditions[1].Preset = "good" },
			fields:   []string{"renditions[1].preset"},
			contains: "for hevc",
		},
		"av1 preset 14": {
			mutate: func(s *Spec) {
				s.Renditions[0].Codec = CodecAV1
				s.Renditions[0].Preset = "14"
				s.Renditions[0].Profile = ""
			},
			fields:   []string{"renditions[0].preset"},
			contains: `must be one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 for av1, got "14"`,
		},
		"av1 x264 preset": {
			mutate:   func(s *Spec) { s.Renditions[0].Codec = CodecAV1; s.Renditions[0].Profile = "" },
			fields:   []string{"renditions[0].preset"},
			contains: `for av1, got "medium"`,
		},
		"vp9 preset medium": {
			mutate: func(s *Spec) {
				s.Packaging = PackagingDASH
				s.Renditions[0].Codec = CodecVP9
				s.Renditions[0].Profile = ""
			},
			fields:   []string{"renditions[0].preset"},
			contains: "must be one of realtime, good, best for vp9",
		},
		"shell injection in preset": {
			mutate:   func(s *Spec) { s.Renditions[0].Preset = "medium -i /etc/passwd" },
			fields:   []string{"renditions[0].preset"},
			contains: "must be one of",
		},
		"h264 profile main10": {
			mutate:   func(s *Spec) { s.Renditions[0].Profile = "main10" },
			fields:   []string{"renditions[0].profile"},
			contains: "must be one of baseline, main, high for h264",
		},
		"vp9 profile 4": {
			mutate: func(s *Spec) {
				s.Packaging = PackagingDASH
				s.Renditions[0] = Rendition{Name: "a", Codec: CodecVP9, BitrateKbps: 900, Profile: "4"}
			},
			fields:   []string{"renditions[0].profile"},
			contains: "must be one of 0, 1, 2, 3 for vp9",
		},
		"vp9 with hls": {
			mutate: func(s *Spec) {
				s.Renditions[0].Codec = CodecVP9
				s.Renditions[0].Preset = ""
				s.Renditions[0].Profile = ""
			},
			fields:   []string{"renditions[0].codec"},
			contains: "vp9 is not allowed with hls packaging",
		},
		"odd height": {
			mutate:   func(s *Spec) { s.Renditions[0].Height = 721 },
			fields:   []string{"renditions[0].height"},
			contains: "even number from 16 to 4320, got 721",
		},
		"height too big": {
			mutate:   func(s *Spec) { s.Renditions[0].Height = 4322 },
			fields:   []string{"renditions[0].height"},
			contains: "from 16 to 4320",
		},
		"height too small": {
			mutate:   func(s *Spec) { s.Renditions[0].Height = 14 },
			fields:   []string{"renditions[0].height"},
			contains: "from 16 to 4320",
		},
		"negative width": {
			mutate:   func(s *Spec) { s.Renditions[1].Width = -2 },
			fields:   []string{"renditions[1].width"},
			contains: "from 16 to 7680",
		},
		"max fps": {
			mutate:   func(s *Spec) { s.Renditions[0].MaxFPS = 241 },
			fields:   []string{"renditions[0].max_fps"},
			contains: "from 1 to 240",
		},
		"max fps NaN": {
			mutate:   func(s *Spec) { s.Renditions[0].MaxFPS = math.NaN() },
			fields:   []string{"renditions[0].max_fps"},
			contains: "from 1 to 240",
		},
		"bad name": {
			mutate:   func(s *Spec) { s.Renditions[0].Name = "../etc" },
			fields:   []string{"renditions[0].name"},
			contains: "1 to 32 characters from a-z, 0-9, _ and -",
		},
		"long name": {
			mutate:   func(s *Spec) { s.Renditions[0].Name = "abcdefghijklmnopqrstuvwxyz0123456" },
			fields:   []string{"renditions[0].name"},
			contains: "1 to 32 characters",
		},
		"empty name unnormalized": {
			mutate:   func(s *Spec) { s.Renditions[0].Name = "" },
			fields:   []string{"renditions[0].name"},
			contains: "required",
		},
		"duplicate name": {
			mutate:   func(s *Spec) { s.Renditions[1].Name = s.Renditions[0].Name },
			fields:   []string{"renditions[1].name"},
			contains: `"720p" is already the name of renditions[0]`,
		},
		"no renditions no thumbnails": {
			mutate:   func(s *Spec) { s.Renditions, s.Thumbnails = nil, nil },
			fields:   []string{"renditions", "audio"},
			contains: "at least one rendition is required (at most 8)",
		},
		"nine renditions": {
			mutate:   func(s *Spec) { s.Renditions = nRenditions(9) },
			fields:   []string{"renditions"},
			contains: "at most 8 renditions are allowed, got 9",
		},
		"thumbnails only with packaging": {
			mutate:   func(s *Spec) { s.Renditions, s.Audio = nil, nil },
			fields:   []string{"packaging"},
			contains: "omit packaging when there are no renditions",
		},
		"missing packaging": {
			mutate:   func(s *Spec) { s.Packaging, s.SegmentSeconds = "", 0 },
			fields:   []string{"packaging"},
			contains: `required: "mp4", "hls", "dash" or ["hls", "dash"]`,
		},
		"wrong packaging": {
			mutate:   func(s *Spec) { s.Packaging, s.SegmentSeconds = "webm", 0 },
			fields:   []string{"packaging"},
			contains: `must be "mp4", "hls", "dash" or ["hls", "dash"] (one set of CMAF segments for both; "cmaf" for short), got "webm"`,
		},
		"segment too long": {
			mutate:   func(s *Spec) { s.SegmentSeconds = 31 },
			fields:   []string{"segment_seconds"},
			contains: "must be from 1 to 30 seconds, got 31",
		},
		"segment with mp4": {
			mutate:   func(s *Spec) { s.Packaging = PackagingMP4 },
			fields:   []string{"segment_seconds"},
			contains: "applies only to hls and dash",
		},
		"audio codec": {
			mutate:   func(s *Spec) { s.Audio.Codec = "mp3" },
			fields:   []string{"audio.codec"},
			contains: `must be one of aac, opus, got "mp3"`,
		},
		"audio bitrate aac": {
			mutate:   func(s *Spec) { s.Audio.BitrateKbps = 513 },
			fields:   []string{"audio.bitrate_kbps"},
			contains: "must be from 32 to 512 kbps for aac",
		},
		"audio bitrate opus": {
			mutate:   func(s *Spec) { s.Audio.Codec = AudioOpus; s.Audio.BitrateKbps = 511 },
			fields:   []string{"audio.bitrate_kbps"},
			contains: "must be from 32 to 510 kbps for opus",
		},
		"audio channels": {
			mutate:   func(s *Spec) { s.Audio.Channels = 4 },
			fields:   []string{"audio.channels"},
			contains: "must be 1 (mono), 2 (stereo) or 6 (5.1), got 4",
		},
		"audio without renditions": {
			mutate:   func(s *Spec) { s.Renditions, s.Packaging, s.SegmentSeconds = nil, "", 0 },
			fields:   []string{"audio"},
			contains: "audio needs at least one rendition",
		},
		"loudnorm out of range": {
			mutate:   func(s *Spec) { s.Audio.Loudnorm = &Loudnorm{IntegratedLUFS: -4, TruePeakDB: 1, LRA: 51} },
			fields:   []string{"audio.loudnorm.integrated_lufs", "audio.loudnorm.true_peak_db", "audio.loudnorm.lra"},
			contains: "must be from -70 to -5 LUFS, got -4",
		},
		"thumbnails asking for nothing": {
			mutate:   func(s *Spec) { s.Thumbnails = &Thumbnails{Width: 320} },
			fields:   []string{"thumbnails"},
			contains: "set interval_seconds (1 to 3600), poster: true, or both",
		},
		"thumbnail interval": {
			mutate:   func(s *Spec) { s.Thumbnails.IntervalSeconds = 0.5 },
			fields:   []string{"thumbnails.interval_seconds"},
			contains: "from 1 to 3600 seconds, got 0.5",
		},
		"thumbnail width": {
			mutate:   func(s *Spec) { s.Thumbnails.Width = 4000 },
			fields:   []string{"thumbnails.width"},
			contains: "must be from 16 to 3840 pixels",
		},
		"poster time without poster": {
			mutate:   func(s *Spec) { s.Thumbnails.Poster = false },
			fields:   []string{"thumbnails.poster_at_seconds"},
			contains: "applies only with poster: true",
		},
		"negative poster time": {
			mutate:   func(s *Spec) { s.Thumbnails.PosterAtSeconds = -1 },
			fields:   []string{"thumbnails.poster_at_seconds"},
			contains: "must be from 0",
		},
		"storyboard only with packaging": {
			mutate: func(s *Spec) {
				s.Renditions, s.Audio, s.Thumbnails = nil, nil, nil
				s.Storyboard = &Storyboard{IntervalSeconds: 5, TileWidth: 160, Columns: 10, Rows: 10}
			},
			fields:   []string{"packaging"},
			contains: "omit packaging when there are no renditions",
		},
		"storyboard interval": {
			mutate:   func(s *Spec) { s.Storyboard = &Storyboard{IntervalSeconds: 0.5, TileWidth: 160, Columns: 10, Rows: 10} },
			fields:   []string{"storyboard.interval_seconds"},
			contains: "must be from 1 to 3600 seconds, got 0.5",
		},
		"storyboard interval NaN": {
			mutate: func(s *Spec) {
				s.Storyboard = &Storyboard{IntervalSeconds: math.NaN(), TileWidth: 160, Columns: 10, Rows: 10}
			},
			fields:   []string{"storyboard.interval_seconds"},
			contains: "must be from 1 to 3600 seconds",
		},
		"storyboard odd tile width": {
			mutate:   func(s *Spec) { s.Storyboard = &Storyboard{IntervalSeconds: 5, TileWidth: 161, Columns: 10, Rows: 10} },
			fields:   []string{"storyboard.tile_width"},
			contains: "must be an even number from 32 to 640 pixels, got 161",
		},
		"storyboard tile too wide": {
			mutate:   func(s *Spec) { s.Storyboard = &Storyboard{IntervalSeconds: 5, TileWidth: 642, Columns: 1, Rows: 1} },
			fields:   []string{"storyboard.tile_width"},
			contains: "got 642",
		},
		"storyboard columns": {
			mutate:   func(s *Spec) { s.Storyboard = &Storyboard{IntervalSeconds: 5, TileWidth: 160, Columns: 21, Rows: 10} },
			fields:   []string{"storyboard.columns"},
			contains: "must be from 1 to 20, got 21",
		},
		"storyboard sheet too wide": {
			mutate:   func(s *Spec) { s.Storyboard = &Storyboard{IntervalSeconds: 5, TileWidth: 640, Columns: 13, Rows: 10} },
			fields:   []string{"storyboard.columns"},
			contains: "columns x tile_width is 8320 pixels, more than the 8192 a sheet may be wide; use at most 12 columns of 640 pixels",
		},
		"storyboard rows": {
			mutate:   func(s *Spec) { s.Storyboard = &Storyboard{IntervalSeconds: 5, TileWidth: 160, Columns: 10, Rows: 0} },
			fields:   []string{"storyboard.rows"},
			contains: "must be from 1 to 20, got 0",
		},
		"storyboard all wrong": {
			mutate:   func(s *Spec) { s.Storyboard = &Storyboard{IntervalSeconds: -1, TileWidth: 8, Columns: -1, Rows: 99} },
			fields:   []string{"storyboard.interval_seconds", "storyboard.tile_width", "storyboard.columns", "storyboard.rows"},
			contains: "got -1",
		},
		"aes-128 hls":          {mutate: func(s *Spec) { s.Encryption = &Encryption{Method: EncryptAES128} }},
		"sample-aes hls":       {mutate: func(s *Spec) { s.Encryption = &Encryption{Method: EncryptSampleAES} }},
		"sample-aes dash":      {mutate: func(s *Spec) { s.Packaging = PackagingDASH; s.Encryption = &Encryption{Method: EncryptSampleAES} }},
		"cenc cmaf":            {mutate: func(s *Spec) { s.Packaging = PackagingCMAF; s.Encryption = &Encryption{Method: EncryptCENC} }},
		"cenc dash":            {mutate: func(s *Spec) { s.Packaging = PackagingDASH; s.Encryption = &Encryption{Method: EncryptCENC} }},
		"encryption no method": {mutate: func(s *Spec) { s.Encryption = &Encryption{} }, fields: []string{"encryption.method"}, contains: "required: one of aes-128, sample-aes, cenc"},
		"encryption unknown method": {
			mutate:   func(s *Spec) { s.Encryption = &Encryption{Method: "widevine"} },
			fields:   []string{"encryption.method"},
			contains: `got "widevine"`,
		},
		"aes-128 dash": {
			mutate:   func(s *Spec) { s.Packaging = PackagingDASH; s.Encryption = &Encryption{Method: EncryptAES128} },
			fields:   []string{"encryption.method"},
			contains: `"aes-128" needs packaging hls, not dash`,
		},
		"cenc hls alone": {
			mutate:   func(s *Spec) { s.Encryption = &Encryption{Method: EncryptCENC} },
			fields:   []string{"encryption.method"},
			contains: `"cenc" needs packaging dash, hls + dash (cmaf), not hls`,
		},
		"encryption of mp4": {
			mutate:   func(s *Spec) { mp4CRF(s, CodecH264, 23); s.Encryption = &Encryption{Method: EncryptSampleAES} },
			fields:   []string{"encryption.method"},
			contains: "not mp4",
		},
		"encryption of images only": {
			mutate: func(s *Spec) {
				s.Renditions, s.Audio, s.Packaging, s.SegmentSeconds = nil, nil, "", 0
				s.Encryption = &Encryption{Method: EncryptAES128}
			},
			fields:   []string{"encryption"},
			contains: "nothing to encrypt",
		},
		"every error at once": {
			mutate: func(s *Spec) {
				s.Renditions[0].Codec = "x"
				s.Renditions[1].BitrateKbps = 1
				s.Audio.Channels = 3
			},
			fields:   []string{"renditions[0].codec", "renditions[1].bitrate_kbps", "audio.channels"},
			contains: "must be one of",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := validSpec()
			tt.mutate(&s)
			err := s.Validate()
			if len(tt.fields) == 0 {
				require.NoError(t, err)
				return
			}
			errs := fieldErrors(t, err)
			assert.Equal(t, tt.fields, fields(errs))
			assert.Contains(t, detail(t, errs, tt.fields[0]), tt.contains)
		})
	}
}

// mp4CRF switches the base spec to one CRF rendition in an MP4.
func mp4CRF(s *Spec, codec string, crf int) {
	s.Packaging, s.SegmentSeconds = PackagingMP4, 0
	s.Renditions = []Rendition{{Name: "main", Codec: codec, Height: 720, CRF: new(crf)}}
}

func nRenditions(n int) []Rendition {
	out := make([]Rendition, n)
	for i := range out {
		out[i] = Rendition{Name: "r" + string(rune('a'+i)), Codec: CodecH264, Height: 360 + 2*i, BitrateKbps: 500}
	}
	return out
}
