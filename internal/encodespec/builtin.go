package encodespec

import (
	"encoding/json"
	"maps"
	"slices"
	"sync"
)

// builtins are the workflows every tenant has without creating any. Each is a
// function so every call returns a fresh, unshared spec.
var builtins = map[string]func() Spec{
	// A single 720p H.264 file for download or simple playback.
	"mp4-720p": func() Spec {
		return Spec{
			Renditions: []Rendition{{Codec: CodecH264, Height: 720, CRF: new(23), Preset: "medium", Profile: "high"}},
			Audio:      &Audio{Codec: AudioAAC, BitrateKbps: 128, Channels: 2},
			Packaging:  PackagingMP4,
		}
	},
	// The usual adaptive ladder as fMP4 HLS; ForSource trims rungs above
	// the source.
	"hls-ladder": func() Spec { return ladder(PackagingHLS) },
	// The same ladder as DASH (CMAF segments, one MPD).
	"dash-ladder": func() Spec { return ladder(PackagingDASH) },
	// The same ladder encoded once for both: CMAF segments referenced by
	// an HLS master playlist and a DASH MPD.
	"cmaf-ladder": func() Spec { return ladder(PackagingCMAF) },
	// Stills only: one every 10 s plus a poster frame. It has no
	// storyboard: its outputs are pinned by existing clients and tests; ask
	// for one in an inline spec or a workflow ({"storyboard": {}}).
	"thumbnails": func() Spec {
		return Spec{Thumbnails: &Thumbnails{IntervalSeconds: 10, Width: DefaultThumbnailWidth, Poster: true}}
	},
}

// ladder is a 1080/720/480/360 H.264 ladder. H.264 plays everywhere; main
// profile on the lowest rung keeps old devices served.
func ladder(packaging Packaging) Spec {
	return Spec{
		Renditions: []Rendition{
			{Codec: CodecH264, Height: 1080, BitrateKbps: 5000, Preset: "medium", Profile: "high"},
			{Codec: CodecH264, Height: 720, BitrateKbps: 3000, Preset: "medium", Profile: "high"},
			{Codec: CodecH264, Height: 480, BitrateKbps: 1400, Preset: "medium", Profile: "high"},
			{Codec: CodecH264, Height: 360, BitrateKbps: 800, Preset: "medium", Profile: "main"},
		},
		Audio:     &Audio{Codec: AudioAAC, BitrateKbps: 128, Channels: 2},
		Packaging: packaging,
	}
}

// Builtin returns the named built-in workflow's spec, normalized and valid,
// and whether the name is known. The result is the caller's to change.
func Builtin(name string) (Spec, bool) {
	build, ok := builtins[name]
	if !ok {
		return Spec{}, false
	}
	s := build()
	s.Normalize()
	return s, true
}

// BuiltinNames lists the built-in workflows in sorted order, for listings and
// for error details that say which names exist.
func BuiltinNames() []string {
	return slices.Sorted(maps.Keys(builtins))
}

// builtinJSON is each built-in workflow's spec as json.Marshal writes it,
// made once: a submission naming a built-in workflow stores it so, and
// making it again for each one (build, normalize, marshal) was about a
// tenth of the REST API's CPU a job at 1,000 submissions a second.
var builtinJSON = sync.OnceValue(func() map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(builtins))
	for name := range builtins {
		s, _ := Builtin(name)
		b, err := json.Marshal(s)
		if err != nil {
			panic("encodespec: a built-in workflow does not marshal: " + err.Error()) // plain data: cannot happen
		}
		out[name] = b
	}
	return out
})

// BuiltinJSON is the named built-in workflow's spec as json.Marshal writes
// what Builtin returns, and whether the name is known. The bytes are the
// caller's to keep or change.
func BuiltinJSON(name string) (json.RawMessage, bool) {
	b, ok := builtinJSON()[name]
	return slices.Clone(b), ok
}
