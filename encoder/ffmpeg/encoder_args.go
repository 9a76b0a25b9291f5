package ffmpeg

import (
	"strconv"
	"strings"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// videoArgs are the encoder options of one rendition's stream; s is the
// stream specifier within its output (":v:0"). Every value comes from the
// validated spec: presets and profiles are allowlisted by encodespec and
// mapped here, numbers are range-checked.
//
// Keyframes go at every multiple of keyframeSeconds (-force_key_frames by
// time, so renditions with different frame rates still line up), the GOP
// is fixed to the same length and scene-cut keyframes are off, so every
// rendition has keyframes at exactly the same instants and segments align.
func videoArgs(pr plannedRendition, s string, keyframeSeconds float64) []string {
	r, enc, gop := pr.r, pr.encoder.Encoder, strconv.Itoa(pr.gop)
	a := []string{
		"-c" + s, enc,
		"-force_key_frames" + s, "expr:gte(t,n_forced*" + formatFloat(keyframeSeconds) + ")",
		"-g" + s, gop,
	}
	kbps := func(n int) string { return strconv.Itoa(n) + "k" }
	vbv := func() []string {
		b := r.BitrateKbps
		return []string{"-b" + s, kbps(b), "-maxrate" + s, kbps(b * 6 / 5), "-bufsize" + s, kbps(b * 2)}
	}

	var x265 []string
	if pr.hdr != nil {
		var colour []string
		colour, x265, _ = hdrArgs(*pr.hdr, enc, s)
		a = append(a, colour...)
	}

	switch enc {
	case "libx264", "libx265":
		a = append(a, "-keyint_min"+s, gop, "-forced-idr"+s, "1")
		if enc == "libx264" {
			a = append(a, "-sc_threshold"+s, "0")
		} else {
			params := append([]string{"scenecut=0", "open-gop=0", "log-level=error"}, x265...)
			a = append(a, "-x265-params"+s, strings.Join(params, ":"), "-tag"+s, "hvc1")
		}
		if r.Preset != "" {
			a = append(a, "-preset"+s, r.Preset)
		}
		if r.Profile != "" {
			a = append(a, "-profile"+s, r.Profile)
		}
		switch {
		case r.CRF != nil:
			a = append(a, "-crf"+s, strconv.Itoa(*r.CRF))
		case pr.cappedCRF > 0:
			// Constant quality under the rendition's rate cap.
			b := r.BitrateKbps
			a = append(a, "-crf"+s, formatFloat(pr.cappedCRF), "-maxrate"+s, kbps(b*6/5), "-bufsize"+s, kbps(b*2))
		default:
			a = append(a, vbv()...)
		}

	case "libsvtav1":
		// SVT-AV1 places a keyframe every -g frames and does no scene-cut
		// detection unless asked, which keeps the GOP fixed.
		if r.Preset != "" {
			a = append(a, "-preset"+s, r.Preset)
		}
		if r.CRF != nil {
			a = append(a, "-crf"+s, strconv.Itoa(*r.CRF))
		} else {
			a = append(a, "-b"+s, kbps(r.BitrateKbps))
		}

	case "libaom-av1":
		// SVT-AV1 presets 0..13 map onto libaom's cpu-used 0..8.
		cpu := "6"
		if n, err := strconv.Atoi(r.Preset); err == nil {
			cpu = strconv.Itoa(min(n, 8))
		}
		a = append(a, "-keyint_min"+s, gop, "-cpu-used"+s, cpu, "-row-mt"+s, "1")
		if r.CRF != nil {
			a = append(a, "-crf"+s, strconv.Itoa(*r.CRF), "-b"+s, "0")
		} else {
			a = append(a, vbv()...)
		}

	case "libvpx-vp9":
		deadline, cpu := "good", "4"
		switch r.Preset {
		case "realtime":
			deadline, cpu = "realtime", "8"
		case "best":
			deadline, cpu = "best", "0"
		}
		a = append(a, "-keyint_min"+s, gop, "-deadline"+s, deadline, "-cpu-used"+s, cpu, "-row-mt"+s, "1")
		if r.Profile != "" {
			a = append(a, "-profile"+s, r.Profile)
		}
		if r.CRF != nil {
			a = append(a, "-crf"+s, strconv.Itoa(*r.CRF), "-b"+s, "0")
		} else {
			a = append(a, vbv()...)
		}

	case "h264_nvenc", "hevc_nvenc", "av1_nvenc":
		a = append(a, "-no-scenecut"+s, "1", "-preset"+s, nvencPreset(r.Preset), "-rc"+s, "vbr")
		if enc != "av1_nvenc" {
			a = append(a, "-forced-idr"+s, "1")
		}
		if enc == "hevc_nvenc" {
			a = append(a, "-tag"+s, "hvc1")
		}
		if r.Profile != "" && enc != "av1_nvenc" {
			a = append(a, "-profile"+s, r.Profile)
		}
		if r.CRF != nil {
			a = append(a, "-cq"+s, strconv.Itoa(*r.CRF), "-b"+s, "0")
		} else {
			a = append(a, vbv()...)
		}
	}
	return a
}

// nvencPreset maps the x264-style presets the spec allows for h264 and
// hevc onto NVENC's p1 (fastest) .. p7 (best); NVENC's default is p4.
func nvencPreset(preset string) string {
	switch preset {
	case "ultrafast", "superfast":
		return "p1"
	case "veryfast":
		return "p2"
	case "faster", "fast":
		return "p3"
	case "slow":
		return "p5"
	case "slower":
		return "p6"
	case "veryslow":
		return "p7"
	default:
		return "p4"
	}
}

// pixelFormat is the format the rendition is scaled into: 8-bit 4:2:0
// unless the profile needs more, so 10-bit or 4:4:4 sources do not end up
// in a profile the spec did not ask for.
func pixelFormat(e EncoderChoice, r encodespec.Rendition) string {
	switch {
	case r.Codec == encodespec.CodecHEVC && r.Profile == "main10" && e.Hardware:
		return "p010le"
	case r.Codec == encodespec.CodecHEVC && r.Profile == "main10":
		return "yuv420p10le"
	case r.Codec == encodespec.CodecVP9 && r.Profile == "1":
		return "yuv444p"
	case r.Codec == encodespec.CodecVP9 && r.Profile == "2":
		return "yuv420p10le"
	case r.Codec == encodespec.CodecVP9 && r.Profile == "3":
		return "yuv444p10le"
	}
	return "yuv420p"
}

// hdrPixelFormat is the pixel format of a rendition that keeps HDR: 10
// bits, in the layout the hardware encoders take.
func hdrPixelFormat(e EncoderChoice) string {
	if e.Hardware {
		return "p010le"
	}
	return "yuv420p10le"
}

// audioArgs encode the shared audio track; s is its stream specifier.
func audioArgs(a encodespec.Audio, s string) []string {
	enc := "aac"
	if a.Codec == encodespec.AudioOpus {
		enc = "libopus"
	}
	return []string{"-c" + s, enc, "-b" + s, strconv.Itoa(a.BitrateKbps) + "k"}
}
