package ffmpeg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// containerSkip is, for the ISO BMFF boxes on the way from moov to a
// codec configuration box, how many payload bytes precede their children.
var containerSkip = map[string]int{
	"moov": 0, "trak": 0, "mdia": 0, "minf": 0, "stbl": 0,
	"stsd": 8,                                                              // version, flags, entry count
	"avc1": 78, "avc3": 78, "hvc1": 78, "hev1": 78, "av01": 78, "vp09": 78, // visual sample entries
	"mp4a": 28, "Opus": 28, // audio sample entries (version 0)
}

// findBox returns the payload of the first box of type typ in data,
// descending only into the containers listed in containerSkip.
func findBox(data []byte, typ string) ([]byte, bool) {
	for len(data) >= 8 {
		size := uint64(binary.BigEndian.Uint32(data))
		name := string(data[4:8])
		header := uint64(8)
		switch size {
		case 0:
			size = uint64(len(data))
		case 1:
			if len(data) < 16 {
				return nil, false
			}
			size, header = binary.BigEndian.Uint64(data[8:]), 16
		}
		if size < header || size > uint64(len(data)) {
			return nil, false
		}
		payload := data[header:size]
		if name == typ {
			return payload, true
		}
		if skip, ok := containerSkip[name]; ok && len(payload) >= skip {
			if found, ok := findBox(payload[skip:], typ); ok {
				return found, true
			}
		}
		data = data[size:]
	}
	return nil, false
}

// codecString returns the RFC 6381 codecs value (as HLS CODECS wants it)
// of the track in an init segment, and its channel count for audio.
func codecString(init []byte) (codec string, channels int, err error) {
	if b, ok := findBox(init, "avcC"); ok && len(b) >= 4 {
		return fmt.Sprintf("avc1.%02x%02x%02x", b[1], b[2], b[3]), 0, nil
	}
	if b, ok := findBox(init, "hvcC"); ok && len(b) >= 13 {
		return hevcCodec(b, sampleEntryName(init, "hvc1", "hev1")), 0, nil
	}
	if b, ok := findBox(init, "av1C"); ok && len(b) >= 3 {
		return av1Codec(b), 0, nil
	}
	if b, ok := findBox(init, "vpcC"); ok && len(b) >= 8 {
		// version/flags(4), profile, level, bitDepth(4 bits)...
		return fmt.Sprintf("vp09.%02d.%02d.%02d", b[4], b[5], b[6]>>4), 0, nil
	}
	if b, ok := findBox(init, "dOps"); ok && len(b) >= 2 {
		return "Opus", int(b[1]), nil
	}
	if b, ok := findBox(init, "esds"); ok {
		aot, ch, err := parseESDS(b)
		if err != nil {
			return "", 0, err
		}
		return "mp4a.40." + strconv.Itoa(aot), ch, nil
	}
	return "", 0, errors.New("no supported codec configuration box in the init segment")
}

func sampleEntryName(init []byte, names ...string) string {
	for _, n := range names {
		if _, ok := findBox(init, n); ok {
			return n
		}
	}
	return names[0]
}

// hevcCodec builds "hvc1.<space><profile>.<compat>.<tier><level>.<constraints>"
// as ISO/IEC 14496-15 Annex E describes.
func hevcCodec(b []byte, entry string) string {
	space := [...]string{"", "A", "B", "C"}[b[1]>>6]
	tier := "L"
	if b[1]&0x20 != 0 {
		tier = "H"
	}
	compat := bits.Reverse32(binary.BigEndian.Uint32(b[2:6]))
	s := fmt.Sprintf("%s.%s%d.%X.%s%d", entry, space, b[1]&0x1f, compat, tier, b[12])
	constraints := b[6:12]
	last := -1
	for i, c := range constraints {
		if c != 0 {
			last = i
		}
	}
	var parts []string
	for _, c := range constraints[:last+1] {
		parts = append(parts, fmt.Sprintf("%X", c))
	}
	if len(parts) > 0 {
		s += "." + strings.Join(parts, ".")
	}
	return s
}

// av1Codec builds "av01.<profile>.<level><tier>.<bitdepth>" from av1C.
func av1Codec(b []byte) string {
	profile, level := b[1]>>5, b[1]&0x1f
	tier := "M"
	if b[2]&0x80 != 0 {
		tier = "H"
	}
	depth := 8
	if b[2]&0x40 != 0 {
		depth = 10
		if profile == 2 && b[2]&0x20 != 0 {
			depth = 12
		}
	}
	return fmt.Sprintf("av01.%d.%02d%s.%02d", profile, level, tier, depth)
}

// parseESDS finds the AudioSpecificConfig in an esds payload and returns
// its audio object type and channel configuration.
func parseESDS(b []byte) (aot, channels int, err error) {
	if len(b) < 4 {
		return 0, 0, errors.New("esds too short")
	}
	b = b[4:] // version and flags
	for len(b) > 0 {
		tag := b[0]
		b = b[1:]
		size := 0
		for i := 0; i < 4 && len(b) > 0; i++ {
			c := b[0]
			b = b[1:]
			size = size<<7 | int(c&0x7f)
			if c&0x80 == 0 {
				break
			}
		}
		switch tag {
		case 0x03: // ES_Descriptor: ES_ID, flags, optional fields, then children
			if len(b) < 3 {
				return 0, 0, errors.New("esds: short ES descriptor")
			}
			flags := b[2]
			skip := 3
			if flags&0x80 != 0 {
				skip += 2
			}
			if flags&0x40 != 0 && len(b) > skip {
				skip += 1 + int(b[skip])
			}
			if flags&0x20 != 0 {
				skip += 2
			}
			if len(b) < skip {
				return 0, 0, errors.New("esds: short ES descriptor")
			}
			b = b[skip:]
		case 0x04: // DecoderConfigDescriptor: 13 fixed bytes, then children
			if len(b) < 13 {
				return 0, 0, errors.New("esds: short decoder config")
			}
			b = b[13:]
		case 0x05: // DecoderSpecificInfo: the AudioSpecificConfig
			if len(b) < size || size < 2 {
				return 0, 0, errors.New("esds: short AudioSpecificConfig")
			}
			return parseASC(b[:size])
		default:
			if len(b) < size {
				return 0, 0, errors.New("esds: truncated descriptor")
			}
			b = b[size:]
		}
	}
	return 0, 0, errors.New("esds: no AudioSpecificConfig")
}

// parseASC reads the object type and channel configuration of an
// AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1).
func parseASC(b []byte) (aot, channels int, err error) {
	r := bitReader{b: b}
	aot = r.read(5)
	if aot == 31 {
		aot = 32 + r.read(6)
	}
	if r.read(4) == 0xf { // sampling frequency index: explicit frequency follows
		r.read(24)
	}
	channels = r.read(4)
	if r.err {
		return 0, 0, errors.New("esds: short AudioSpecificConfig")
	}
	if channels == 7 {
		channels = 8
	}
	return aot, channels, nil
}

type bitReader struct {
	b   []byte
	pos int
	err bool
}

func (r *bitReader) read(n int) int {
	v := 0
	for range n {
		if r.pos/8 >= len(r.b) {
			r.err = true
			return 0
		}
		v = v<<1 | int(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}
