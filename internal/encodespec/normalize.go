package encodespec

import "strconv"

// EBU R128 defaults used when a loudnorm field is left at zero.
const (
	DefaultIntegratedLUFS = -23.0
	DefaultTruePeakDB     = -1.0
	DefaultLRA            = 7.0
)

// defaultAudioKbps is the audio bitrate used when none is given, by codec and
// channel count: transparent-enough rates that do not waste bandwidth.
var defaultAudioKbps = map[string]map[int]int{
	AudioAAC:  {1: 64, 2: 128, 6: 384},
	AudioOpus: {1: 48, 2: 96, 6: 256},
}

// Normalize fills defaults so that stored specs are explicit and the encoder
// never guesses: the HLS/DASH segment duration, rendition names derived from
// the size ("720p", "1280w", "source"; a clash gets the codec appended, then
// a number), audio codec, channels and bitrate, loudnorm targets, the
// thumbnail width, the storyboard's interval, tile width and grid, and the
// ladder's mode and per-title target. It leaves invalid values alone for
// Validate to report and is idempotent.
func (s *Spec) Normalize() {
	if s.Packaging.Segmented() && s.SegmentSeconds == 0 {
		s.SegmentSeconds = DefaultSegmentSeconds
	}

	taken := make(map[string]bool, len(s.Renditions))
	for _, r := range s.Renditions {
		if r.Name != "" {
			taken[r.Name] = true
		}
	}
	for i := range s.Renditions {
		r := &s.Renditions[i]
		if r.Name != "" {
			continue
		}
		r.Name = uniqueName(r.defaultName(), r.Codec, taken)
		taken[r.Name] = true
	}

	if a := s.Audio; a != nil {
		if a.Codec == "" {
			a.Codec = AudioAAC
		}
		if a.Channels == 0 {
			a.Channels = 2
		}
		if a.BitrateKbps == 0 {
			a.BitrateKbps = defaultAudioKbps[a.Codec][a.Channels] // stays 0 for invalid combinations
		}
		if l := a.Loudnorm; l != nil {
			if l.IntegratedLUFS == 0 {
				l.IntegratedLUFS = DefaultIntegratedLUFS
			}
			if l.TruePeakDB == 0 {
				l.TruePeakDB = DefaultTruePeakDB
			}
			if l.LRA == 0 {
				l.LRA = DefaultLRA
			}
		}
	}

	if t := s.Thumbnails; t != nil && t.Width == 0 {
		t.Width = DefaultThumbnailWidth
	}
	if b := s.Storyboard; b != nil {
		b.normalize()
	}
	if c := s.Conditioning; c != nil {
		c.normalize()
	}
	if l := s.Ladder; l != nil {
		l.normalize()
	}
}

// defaultName names a rendition after its size.
func (r Rendition) defaultName() string {
	switch {
	case r.Height > 0:
		return strconv.Itoa(r.Height) + "p"
	case r.Width > 0:
		return strconv.Itoa(r.Width) + "w"
	default:
		return "source"
	}
}

// uniqueName returns base, or base with the codec and then a counter
// appended, whichever is first not taken. Only valid names are produced for
// valid codecs; an invalid codec is reported by Validate on its own field.
func uniqueName(base, codec string, taken map[string]bool) string {
	if !taken[base] {
		return base
	}
	if codec != "" && nameRE.MatchString(base+"-"+codec) && !taken[base+"-"+codec] {
		return base + "-" + codec
	}
	for n := 2; ; n++ {
		name := base + "-" + strconv.Itoa(n)
		if !taken[name] {
			return name
		}
	}
}
