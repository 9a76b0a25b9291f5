package encodespec

import (
	"slices"

	"golang.org/x/text/language"
)

// Video codecs a rendition may use.
const (
	CodecH264 = "h264"
	CodecHEVC = "hevc"
	CodecAV1  = "av1"
	CodecVP9  = "vp9"
)

// Audio codecs.
const (
	AudioAAC  = "aac"
	AudioOpus = "opus"
)

// Limits enforced by Validate; exported so API documentation and UI forms can
// quote them rather than restate them.
const (
	MaxRenditions         = 8
	DefaultSegmentSeconds = 4.0
	DefaultThumbnailWidth = 320
)

// Spec is the encode spec a workflow holds. The zero value is invalid; build
// one with Parse, Builtin or a literal followed by Normalize and Validate.
type Spec struct {
	// Renditions are the video outputs. Empty only for a spec of images
	// alone (thumbnails and/or a storyboard).
	Renditions []Rendition `json:"renditions"`
	// Audio is the audio track added to every rendition; nil means no audio
	// output. Inputs without audio work either way.
	Audio *Audio `json:"audio,omitempty"`
	// Packaging is "mp4", "hls", "dash", or ["hls", "dash"] (one set of
	// CMAF segments for both); omitted when there are no renditions.
	Packaging Packaging `json:"packaging"`
	// SegmentSeconds is the HLS/DASH segment duration (1..30, default 4). The
	// encoder places keyframes on segment boundaries in every rendition.
	SegmentSeconds float64 `json:"segment_seconds,omitempty"`
	// Thumbnails asks for still images at an interval and/or a poster frame.
	Thumbnails *Thumbnails `json:"thumbnails,omitempty"`
	// Storyboard asks for scrubbing previews: sprite sheets plus a WebVTT
	// index (see Storyboard).
	Storyboard *Storyboard `json:"storyboard,omitempty"`
	// Conditioning overrides how the input is prepared (deinterlacing, tone
	// mapping, frame rate); nil leaves every decision to the encoder
	// ("auto", see Conditioning).
	Conditioning *Conditioning `json:"conditioning,omitempty"`
	// Encryption encrypts the renditions' segments with a per-job key (see
	// Encryption); nil leaves them clear.
	Encryption *Encryption `json:"encryption,omitempty"`
	// Ladder chooses between the renditions' own bitrates ("fixed", the
	// default) and bitrates chosen per input by a probe ("per_title", see
	// Ladder); nil is fixed.
	Ladder *Ladder `json:"ladder,omitempty"`
	// Chunking splits long inputs into chunks encoded by parallel pods and
	// stitched (see Chunking); nil encodes every input in one pod.
	Chunking *Chunking `json:"chunking,omitempty"`
}

// Rendition is one video output. Height and Width describe a box in the
// source's orientation: Height targets the shorter side of the frame, Width
// limits the longer side (see the package documentation).
type Rendition struct {
	// Name is [a-z0-9_-]{1,32}, unique within the spec; used in output names.
	// Normalize derives it from the size ("720p") when empty.
	Name string `json:"name"`
	// Codec is h264, hevc, av1 or vp9.
	Codec string `json:"codec"`
	// Height is the target for the frame's shorter side; 0 with Width 0
	// keeps the source size.
	Height int `json:"height,omitempty"`
	// Width limits the frame's longer side; with Height set too the frame
	// fits inside the box.
	Width int `json:"width,omitempty"`
	// BitrateKbps is the target video bitrate; exactly one of BitrateKbps
	// and CRF is set.
	BitrateKbps int `json:"bitrate_kbps,omitempty"`
	// CRF is the constant-quality factor (h264/hevc 0..51, av1/vp9 0..63).
	CRF *int `json:"crf,omitempty"`
	// Preset is the encoder speed preset from the codec's allowlist; empty
	// means the encoder's default.
	Preset string `json:"preset,omitempty"`
	// Profile is the codec profile from the codec's allowlist; empty means
	// the encoder's default.
	Profile string `json:"profile,omitempty"`
	// MaxFPS caps the frame rate (1..240); 0 keeps the source rate.
	MaxFPS float64 `json:"max_fps,omitempty"`
}

// Audio is the audio track added to every rendition.
type Audio struct {
	// Codec is aac or opus (default aac).
	Codec string `json:"codec"`
	// BitrateKbps is 32..512 for aac and 32..510 for opus; the default
	// depends on codec and channels (aac stereo 128).
	BitrateKbps int `json:"bitrate_kbps"`
	// Channels is 1, 2 or 6 (default 2); the source is down- or up-mixed.
	Channels int `json:"channels"`
	// Loudnorm enables EBU R128 loudness normalisation when set.
	Loudnorm *Loudnorm `json:"loudnorm,omitempty"`
	// Languages and StreamIndexes choose which audio streams of the input
	// become audio renditions: a stream is kept when its language tag has
	// the base language of one of Languages (BCP 47 or ISO 639-2: "en",
	// "eng" and "en-GB" all keep English streams; "und" keeps untagged
	// ones), or when its position among the input's audio streams (0 =
	// the first) is in StreamIndexes. With both empty every stream is kept.
	// At most MaxAudioTracks streams are kept, in the input's order; an
	// input none of whose streams is chosen fails as unusable input.
	Languages     []string `json:"languages,omitempty"`
	StreamIndexes []int    `json:"stream_indexes,omitempty"`
}

// MaxAudioTracks bounds the audio renditions made from one input, and the
// entries of Audio.Languages and Audio.StreamIndexes.
const MaxAudioTracks = 8

// maxAudioStreamIndex bounds Audio.StreamIndexes.
const maxAudioStreamIndex = 63

// AudioLanguage is the base language (ISO 639-1 where there is one: "en")
// of a stream's or a spec's language tag, "und" when the tag is missing or
// names no language with confidence.
func AudioLanguage(tag string) string {
	if tag == "" {
		return "und"
	}
	t, err := language.Parse(tag)
	if err != nil {
		return "und"
	}
	base, conf := t.Base()
	if t == language.Und || conf < language.High {
		return "und"
	}
	return base.String()
}

// Keeps reports whether the audio stream at index (among the input's audio
// streams) with language tag lang is chosen by a.
func (a Audio) Keeps(index int, lang string) bool {
	if len(a.Languages) == 0 && len(a.StreamIndexes) == 0 {
		return true
	}
	if slices.Contains(a.StreamIndexes, index) {
		return true
	}
	base := AudioLanguage(lang)
	return slices.ContainsFunc(a.Languages, func(l string) bool { return AudioLanguage(l) == base })
}

// Loudnorm holds EBU R128 targets with the ranges of FFmpeg's loudnorm
// filter. Normalize fills zero fields with the EBU R128 defaults (I -23 LUFS,
// TP -1 dBTP, LRA 7 LU), so a true peak of exactly 0 dBTP cannot be asked for;
// use -0.1.
type Loudnorm struct {
	IntegratedLUFS float64 `json:"integrated_lufs"` // -70..-5
	TruePeakDB     float64 `json:"true_peak_db"`    // -9..0
	LRA            float64 `json:"lra"`             // 1..50
}

// Thumbnails asks for JPEG stills: one every IntervalSeconds and/or a poster
// frame. At least one of the two must be requested.
type Thumbnails struct {
	// IntervalSeconds is the spacing of interval thumbnails (1..3600); 0
	// means none.
	IntervalSeconds float64 `json:"interval_seconds,omitempty"`
	// Width of the images in pixels (16..3840, default 320, never wider than
	// the source); height follows the aspect ratio.
	Width int `json:"width,omitempty"`
	// Poster asks for one poster frame.
	Poster bool `json:"poster"`
	// PosterAtSeconds is where the poster is taken; 0 lets the encoder pick
	// (see PosterTime).
	PosterAtSeconds float64 `json:"poster_at_seconds,omitempty"`
}

// PosterTime returns the time in seconds at which to grab the poster frame of
// a source lasting duration seconds: PosterAtSeconds when it lies inside the
// source, otherwise 10% into it, which skips the black frames and slates that
// often open a video.
func (t Thumbnails) PosterTime(duration float64) float64 {
	if t.PosterAtSeconds > 0 && t.PosterAtSeconds < duration {
		return t.PosterAtSeconds
	}
	if duration > 0 {
		return duration / 10
	}
	return 0
}

// Clone returns a deep copy, so a caller may change the result without
// touching a shared spec such as a builtin.
func (s Spec) Clone() Spec {
	out := s
	if s.Renditions != nil {
		out.Renditions = make([]Rendition, len(s.Renditions))
		for i, r := range s.Renditions {
			if r.CRF != nil {
				r.CRF = new(*r.CRF)
			}
			out.Renditions[i] = r
		}
	}
	if s.Audio != nil {
		a := *s.Audio
		if a.Loudnorm != nil {
			a.Loudnorm = new(*a.Loudnorm)
		}
		out.Audio = &a
	}
	if s.Thumbnails != nil {
		out.Thumbnails = new(*s.Thumbnails)
	}
	if s.Storyboard != nil {
		out.Storyboard = new(*s.Storyboard)
	}
	if s.Conditioning != nil {
		out.Conditioning = new(*s.Conditioning)
	}
	if s.Encryption != nil {
		out.Encryption = new(*s.Encryption)
	}
	if s.Ladder != nil {
		out.Ladder = new(*s.Ladder)
	}
	if s.Chunking != nil {
		out.Chunking = new(*s.Chunking)
	}
	return out
}
