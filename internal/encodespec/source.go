package encodespec

import "math"

// nearSourceFactor is how much larger than the best kept rung a source's
// shorter side must be before ForSource adds a rung at source size: below it
// the extra rung would cost an encode for almost no gain.
const nearSourceFactor = 1.1

// ForSource fits the spec to a probed source of width x height pixels, so
// nothing is upscaled:
//
//   - renditions whose box fits the source are kept as they are;
//     OutputSize gives their exact even dimensions;
//   - renditions that would be larger than the source are dropped, except
//     that the smallest of them is kept at source size (Height and Width 0,
//     bitrate scaled by the pixel ratio, at least 50 kbps) when no rendition
//     would be left, or when the source's shorter side is at least 10% above
//     the largest kept rendition's, so a 1279x719 source gets a near-source
//     top rung instead of topping out at 480p; that rendition keeps its name
//     so output names stay predictable;
//   - the thumbnail width and the storyboard's tile width are limited to
//     the source width.
//
// Height is the target for the frame's shorter side (see the package
// documentation), so a 1080p ladder applies unchanged to a 1080x1920 portrait
// source. The result is a deep copy and ForSource is idempotent. For a
// non-positive size the spec is returned unchanged (as a copy).
func (s Spec) ForSource(width, height int) Spec {
	out := s.Clone()
	if width <= 0 || height <= 0 {
		return out
	}
	if t := out.Thumbnails; t != nil && t.Width > evenFloor(width) {
		t.Width = evenFloor(width)
	}
	if b := out.Storyboard; b != nil && b.TileWidth > evenFloor(width) {
		b.TileWidth = evenFloor(width)
	}
	if len(out.Renditions) == 0 {
		return out
	}

	srcShort := min(width, height)
	kept := make([]bool, len(out.Renditions))
	bestShort := 0                  // largest kept output's shorter side
	smallest, smallestArea := -1, 0 // smallest upscaling rendition
	for i, r := range out.Renditions {
		w, h := r.boxFit(width, height)
		if w <= evenFloor(width) && h <= evenFloor(height) {
			kept[i] = true
			bestShort = max(bestShort, min(w, h))
			continue
		}
		if area := w * h; smallest < 0 || area < smallestArea {
			smallest, smallestArea = i, area
		}
	}
	if smallest >= 0 && (bestShort == 0 || float64(srcShort) >= nearSourceFactor*float64(bestShort)) {
		r := &out.Renditions[smallest]
		if r.BitrateKbps != 0 {
			srcArea := float64(evenFloor(width) * evenFloor(height))
			scaled := int(math.Round(float64(r.BitrateKbps) * srcArea / float64(smallestArea)))
			r.BitrateKbps = min(r.BitrateKbps, max(minVideoKbps, scaled))
		}
		r.Height, r.Width = 0, 0
		kept[smallest] = true
	}

	renditions := out.Renditions[:0]
	for i, r := range out.Renditions {
		if kept[i] {
			renditions = append(renditions, r)
		}
	}
	out.Renditions = renditions
	return out
}

// OutputSize returns the frame size this rendition produces for a
// srcW x srcH source: both dimensions even (at least 2), the aspect ratio
// kept within a pixel, never larger than the source (a box larger than the
// source yields the source size, rounded down to even). The box turns with
// the source: Height targets the shorter side, Width limits the longer one.
// A non-positive source size yields 0, 0.
func (r Rendition) OutputSize(srcW, srcH int) (w, h int) {
	if srcW <= 0 || srcH <= 0 {
		return 0, 0
	}
	w, h = r.boxFit(srcW, srcH)
	if maxW, maxH := evenFloor(srcW), evenFloor(srcH); w > maxW || h > maxH {
		return maxW, maxH
	}
	return w, h
}

// boxFit scales the source into the rendition's box without the
// never-upscale clamp, so ForSource can tell which renditions would upscale.
func (r Rendition) boxFit(srcW, srcH int) (w, h int) {
	portrait := srcH > srcW
	short, long := float64(srcH), float64(srcW)
	if portrait {
		short, long = long, short
	}
	boxShort, boxLong := r.Height, r.Width
	if boxShort > 0 {
		boxShort = evenFloor(boxShort)
	}
	if boxLong > 0 {
		boxLong = evenFloor(boxLong)
	}

	var s, l int
	switch {
	case boxShort <= 0 && boxLong <= 0:
		return evenFloor(srcW), evenFloor(srcH)
	case boxLong <= 0:
		s, l = boxShort, evenRound(long*float64(boxShort)/short)
	case boxShort <= 0:
		s, l = evenRound(short*float64(boxLong)/long), boxLong
	default:
		// Fit the box: bind on the short side or on the long side, take the
		// larger candidate that fits. Comparing both rounded candidates (not
		// the exact ratios) keeps an already-even box exact, so OutputSize
		// of its own result is stable.
		aS, aL := boxShort, evenRound(long*float64(boxShort)/short)
		bS, bL := evenRound(short*float64(boxLong)/long), boxLong
		aFits, bFits := aL <= boxLong, bS <= boxShort
		switch {
		case aFits && (!bFits || aS*aL >= bS*bL):
			s, l = aS, aL
		case bFits:
			s, l = bS, bL
		default: // rounding pushed both out; take the smaller, clamped
			s, l = min(aS, bS), min(aL, bL)
		}
	}
	if portrait {
		return s, l
	}
	return l, s
}

// evenRound rounds to the nearest even number, at least 2.
func evenRound(x float64) int {
	return max(2, 2*int(math.Round(x/2)))
}

// evenFloor rounds down to an even number, at least 2.
func evenFloor(n int) int {
	return max(2, n&^1)
}
