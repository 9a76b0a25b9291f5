package encodespec

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Packaging is how the renditions are packaged. In JSON it is a string
// ("mp4", "hls", "dash") or, for HLS and DASH over one set of CMAF
// segments, the list ["hls", "dash"] (in either order; "cmaf" is accepted as
// its short name). A list of one is that packaging; any other list is kept
// in its written form for Validate to refuse.
type Packaging string

// Packaging values. Kept as constants so the encoder and the API switch over
// the same spellings the validator accepts.
const (
	PackagingMP4  Packaging = "mp4"  // one MP4 file per rendition
	PackagingHLS  Packaging = "hls"  // fMP4 segments, a media playlist per rendition and a master playlist
	PackagingDASH Packaging = "dash" // fMP4 (CMAF) segments and one MPD
	// PackagingCMAF is one set of fMP4 (CMAF) segments referenced by both
	// an HLS master playlist with its media playlists and a DASH MPD.
	PackagingCMAF Packaging = "cmaf"
)

// packagings are the valid values, in the order error details list them.
var packagings = []Packaging{PackagingMP4, PackagingHLS, PackagingDASH, PackagingCMAF}

// HLS reports whether the packaging writes HLS playlists.
func (p Packaging) HLS() bool { return p == PackagingHLS || p == PackagingCMAF }

// DASH reports whether the packaging writes a DASH MPD.
func (p Packaging) DASH() bool { return p == PackagingDASH || p == PackagingCMAF }

// Segmented reports whether the packaging cuts the renditions into segments.
func (p Packaging) Segmented() bool { return p.HLS() || p.DASH() }

// String is the packaging as error details name it.
func (p Packaging) String() string {
	if p == PackagingCMAF {
		return "hls + dash (cmaf)"
	}
	return string(p)
}

// JSONShapes tells strictjson that a packaging is a string or a list of
// strings.
func (Packaging) JSONShapes() []any { return []any{"", []string(nil)} }

// MarshalJSON writes CMAF as its list, ["hls","dash"], and any other value
// as a string.
func (p Packaging) MarshalJSON() ([]byte, error) {
	if p == PackagingCMAF {
		return json.Marshal([]Packaging{PackagingHLS, PackagingDASH})
	}
	return json.Marshal(string(p))
}

// UnmarshalJSON reads a string or a list of strings (see Packaging).
func (p *Packaging) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*p = Packaging(one)
		return nil
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("packaging: want a string or a list of strings: %w", err)
	}
	sorted := slices.Sorted(slices.Values(list))
	switch {
	case len(list) == 1:
		*p = Packaging(list[0])
	case slices.Equal(sorted, []string{string(PackagingDASH), string(PackagingHLS)}):
		*p = PackagingCMAF
	default:
		*p = Packaging("[" + strings.Join(list, ", ") + "]")
	}
	return nil
}
