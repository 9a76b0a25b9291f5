package encodespec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/text/language"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// nameRE is the rendition name rule; names end up in object keys and file
// names, so nothing outside this set is safe.
var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// codecRule is what one video codec accepts. Presets and profiles are the
// spellings the encoder maps to FFmpeg options; anything else is rejected so
// no user string is passed through.
type codecRule struct {
	maxCRF   int
	presets  []string
	profiles []string
}

var x26xPresets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}

var codecRules = map[string]codecRule{
	CodecH264: {maxCRF: 51, presets: x26xPresets, profiles: []string{"baseline", "main", "high"}},
	CodecHEVC: {maxCRF: 51, presets: x26xPresets, profiles: []string{"main", "main10"}},
	CodecAV1: {maxCRF: 63, profiles: []string{"main"},
		presets: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13"}}, // SVT-AV1
	CodecVP9: {maxCRF: 63, presets: []string{"realtime", "good", "best"}, profiles: []string{"0", "1", "2", "3"}},
}

// Order in which allowed values are listed in error details.
var (
	codecs     = []string{CodecH264, CodecHEVC, CodecAV1, CodecVP9}
	audioCodec = []string{AudioAAC, AudioOpus}
)

// Ranges enforced by Validate.
const (
	minDim, maxHeight, maxWidth = 16, 4320, 7680
	minVideoKbps, maxVideoKbps  = 50, 100_000
	minAudioKbps                = 32
	minFPS, maxFPS              = 1.0, 240.0
	minSegment, maxSegment      = 1.0, 30.0
	minInterval, maxInterval    = 1.0, 3600.0
	maxThumbWidth               = 3840
	maxPosterAt                 = 86_400.0
)

var maxAudioKbps = map[string]int{AudioAAC: 512, AudioOpus: 510}

// Validate reports every problem with the spec at once, in JSON field order,
// as a validation.Errors whose field paths follow the JSON names
// ("renditions[1].codec"), or nil. Each detail says what is allowed. Validate
// expects a normalized spec: it does not fill defaults, so an empty rendition
// name or a zero segment duration for hls is an error here.
func (s Spec) Validate() error {
	var errs validation.Errors
	switch {
	case len(s.Renditions) == 0 && s.Thumbnails == nil && s.Storyboard == nil:
		errs.Add("renditions", "at least one rendition is required (at most %d); only a thumbnails-only or storyboard-only spec may have none", MaxRenditions)
	case len(s.Renditions) > MaxRenditions:
		errs.Add("renditions", "at most %d renditions are allowed, got %d", MaxRenditions, len(s.Renditions))
	}
	names := make(map[string]int, len(s.Renditions))
	for i, r := range s.Renditions {
		path := fmt.Sprintf("renditions[%d]", i)
		r.validate(&errs, path, s.Packaging)
		if j, dup := names[r.Name]; dup && r.Name != "" {
			errs.Add(path+".name", "%q is already the name of renditions[%d]; names must be unique", r.Name, j)
		} else {
			names[r.Name] = i
		}
	}

	if s.Audio != nil {
		if len(s.Renditions) == 0 {
			errs.Add("audio", "audio needs at least one rendition to go with; add a rendition or omit audio")
		}
		s.Audio.validate(&errs, "audio")
	}
	s.validatePackaging(&errs)
	if s.Thumbnails != nil {
		s.Thumbnails.validate(&errs, "thumbnails")
	}
	if s.Storyboard != nil {
		s.Storyboard.validate(&errs, "storyboard")
	}
	if s.Conditioning != nil {
		s.Conditioning.validate(&errs, "conditioning")
		if s.Conditioning.ToneMap == ConditionPassthrough {
			validatePassthrough(&errs, s.Renditions)
		}
	}
	if s.Encryption != nil {
		s.Encryption.validate(&errs, "encryption", s)
	}
	if s.Ladder != nil {
		s.Ladder.validate(&errs, "ladder", s.Renditions)
	}
	if s.Chunking != nil {
		s.Chunking.validate(&errs, "chunking", s)
	}
	return errs.Err()
}

func (s Spec) validatePackaging(errs *validation.Errors) {
	const valid = `"mp4", "hls", "dash" or ["hls", "dash"] (one set of CMAF segments for both; "cmaf" for short)`
	switch {
	case len(s.Renditions) == 0:
		if s.Packaging != "" && (s.Thumbnails != nil || s.Storyboard != nil) {
			errs.Add("packaging", "omit packaging when there are no renditions (a spec of thumbnails and/or a storyboard only)")
		}
	case s.Packaging == "":
		errs.Add("packaging", "required: %s", valid)
	case !slices.Contains(packagings, s.Packaging):
		errs.Add("packaging", "must be %s, got %q", valid, string(s.Packaging))
	}
	segmented := s.Packaging.Segmented()
	switch {
	case segmented && !inRange(s.SegmentSeconds, minSegment, maxSegment):
		errs.Add("segment_seconds", "must be from %g to %g seconds, got %g", minSegment, maxSegment, s.SegmentSeconds)
	case !segmented && s.SegmentSeconds != 0:
		errs.Add("segment_seconds", "applies only to hls and dash packaging; omit it")
	}
}

func (r Rendition) validate(errs *validation.Errors, path string, packaging Packaging) {
	switch {
	case r.Name == "":
		errs.Add(path+".name", "required: 1 to 32 characters from a-z, 0-9, _ and -")
	case !nameRE.MatchString(r.Name):
		errs.Add(path+".name", "must be 1 to 32 characters from a-z, 0-9, _ and -, got %q", r.Name)
	}

	rule, knownCodec := codecRules[r.Codec]
	switch {
	case r.Codec == "":
		errs.Add(path+".codec", "required: one of %s", list(codecs))
	case !knownCodec:
		errs.Add(path+".codec", "must be one of %s, got %q", list(codecs), r.Codec)
	case r.Codec == CodecVP9 && packaging.HLS():
		errs.Add(path+".codec", "vp9 is not allowed with %s packaging (fMP4 HLS players rarely decode it); use dash packaging, or h264, hevc or av1", packaging)
	}

	if r.Height != 0 && (r.Height < minDim || r.Height > maxHeight || r.Height%2 != 0) {
		errs.Add(path+".height", "must be 0 (follow the source) or an even number from %d to %d, got %d", minDim, maxHeight, r.Height)
	}
	if r.Width != 0 && (r.Width < minDim || r.Width > maxWidth || r.Width%2 != 0) {
		errs.Add(path+".width", "must be 0 (follow the source) or an even number from %d to %d, got %d", minDim, maxWidth, r.Width)
	}

	segmented := packaging.Segmented()
	switch {
	case r.BitrateKbps != 0 && r.CRF != nil:
		errs.Add(path+".crf", "set either bitrate_kbps or crf, not both")
	case r.BitrateKbps == 0 && r.CRF == nil && segmented:
		errs.Add(path+".bitrate_kbps", "required for %s packaging: a bitrate from %d to %d kbps", packaging, minVideoKbps, maxVideoKbps)
	case r.BitrateKbps == 0 && r.CRF == nil:
		errs.Add(path+".bitrate_kbps", "required: set bitrate_kbps (%d to %d) or crf (%s)", minVideoKbps, maxVideoKbps, crfRange(r.Codec))
	case r.CRF != nil && segmented:
		errs.Add(path+".crf", "%s packaging needs bitrate_kbps (%d to %d) on every rendition instead of crf: players choose rungs by declared bandwidth", packaging, minVideoKbps, maxVideoKbps)
	}
	if r.BitrateKbps != 0 && (r.BitrateKbps < minVideoKbps || r.BitrateKbps > maxVideoKbps) {
		errs.Add(path+".bitrate_kbps", "must be from %d to %d kbps, got %d", minVideoKbps, maxVideoKbps, r.BitrateKbps)
	}
	if r.CRF != nil && knownCodec && (*r.CRF < 0 || *r.CRF > rule.maxCRF) {
		errs.Add(path+".crf", "must be from 0 to %d for %s, got %d", rule.maxCRF, r.Codec, *r.CRF)
	}
	if r.Preset != "" && knownCodec && !slices.Contains(rule.presets, r.Preset) {
		errs.Add(path+".preset", "must be one of %s for %s, got %q", list(rule.presets), r.Codec, r.Preset)
	}
	if r.Profile != "" && knownCodec && !slices.Contains(rule.profiles, r.Profile) {
		errs.Add(path+".profile", "must be one of %s for %s, got %q", list(rule.profiles), r.Codec, r.Profile)
	}
	if r.MaxFPS != 0 && !inRange(r.MaxFPS, minFPS, maxFPS) {
		errs.Add(path+".max_fps", "must be 0 (keep the source rate) or from %g to %g, got %g", minFPS, maxFPS, r.MaxFPS)
	}
}

func (a Audio) validate(errs *validation.Errors, path string) {
	maxKbps, known := maxAudioKbps[a.Codec]
	switch {
	case a.Codec == "":
		errs.Add(path+".codec", "required: one of %s", list(audioCodec))
	case !known:
		errs.Add(path+".codec", "must be one of %s, got %q", list(audioCodec), a.Codec)
	case a.BitrateKbps < minAudioKbps || a.BitrateKbps > maxKbps:
		errs.Add(path+".bitrate_kbps", "must be from %d to %d kbps for %s, got %d", minAudioKbps, maxKbps, a.Codec, a.BitrateKbps)
	}
	if a.Channels != 1 && a.Channels != 2 && a.Channels != 6 {
		errs.Add(path+".channels", "must be 1 (mono), 2 (stereo) or 6 (5.1), got %d", a.Channels)
	}
	if len(a.Languages) > MaxAudioTracks {
		errs.Add(path+".languages", "at most %d languages, got %d", MaxAudioTracks, len(a.Languages))
	}
	seen := map[string]int{}
	for i, l := range a.Languages {
		field := fmt.Sprintf("%s.languages[%d]", path, i)
		if _, err := language.Parse(l); err != nil || len(l) > 35 {
			errs.Add(field, "must be a language tag such as en, eng or pt-BR (und for untagged streams), got %q", l)
			continue
		}
		base := AudioLanguage(l)
		if j, dup := seen[base]; dup {
			errs.Add(field, "%q has the base language %s, as languages[%d] has", l, base, j)
		}
		seen[base] = i
	}
	if len(a.StreamIndexes) > MaxAudioTracks {
		errs.Add(path+".stream_indexes", "at most %d stream indexes, got %d", MaxAudioTracks, len(a.StreamIndexes))
	}
	for i, n := range a.StreamIndexes {
		field := fmt.Sprintf("%s.stream_indexes[%d]", path, i)
		switch {
		case n < 0 || n > maxAudioStreamIndex:
			errs.Add(field, "must be from 0 (the input's first audio stream) to %d, got %d", maxAudioStreamIndex, n)
		case slices.Index(a.StreamIndexes, n) < i:
			errs.Add(field, "%d is given twice", n)
		}
	}
	if l := a.Loudnorm; l != nil {
		if !inRange(l.IntegratedLUFS, -70, -5) {
			errs.Add(path+".loudnorm.integrated_lufs", "must be from -70 to -5 LUFS, got %g", l.IntegratedLUFS)
		}
		if !inRange(l.TruePeakDB, -9, 0) {
			errs.Add(path+".loudnorm.true_peak_db", "must be from -9 to 0 dBTP, got %g", l.TruePeakDB)
		}
		if !inRange(l.LRA, 1, 50) {
			errs.Add(path+".loudnorm.lra", "must be from 1 to 50 LU, got %g", l.LRA)
		}
	}
}

func (t Thumbnails) validate(errs *validation.Errors, path string) {
	if t.IntervalSeconds == 0 && !t.Poster {
		errs.Add(path, "asks for no images: set interval_seconds (%g to %g), poster: true, or both; or omit thumbnails", minInterval, maxInterval)
	}
	if t.IntervalSeconds != 0 && !inRange(t.IntervalSeconds, minInterval, maxInterval) {
		errs.Add(path+".interval_seconds", "must be 0 (no interval thumbnails) or from %g to %g seconds, got %g", minInterval, maxInterval, t.IntervalSeconds)
	}
	if t.Width < minDim || t.Width > maxThumbWidth {
		errs.Add(path+".width", "must be from %d to %d pixels, got %d", minDim, maxThumbWidth, t.Width)
	}
	switch {
	case !inRange(t.PosterAtSeconds, 0, maxPosterAt):
		errs.Add(path+".poster_at_seconds", "must be from 0 (let the encoder pick) to %g seconds, got %g", maxPosterAt, t.PosterAtSeconds)
	case t.PosterAtSeconds != 0 && !t.Poster:
		errs.Add(path+".poster_at_seconds", "applies only with poster: true; set poster or omit poster_at_seconds")
	}
}

func crfRange(codec string) string {
	if rule, ok := codecRules[codec]; ok {
		return fmt.Sprintf("0 to %d for %s", rule.maxCRF, codec)
	}
	return "0 to 51 for h264/hevc, 0 to 63 for av1/vp9"
}

// inRange reports lo <= v <= hi; written so NaN is out of range.
func inRange(v, lo, hi float64) bool { return v >= lo && v <= hi }

func list(values []string) string { return strings.Join(values, ", ") }
