package ffmpeg

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// Codec is a video codec as the encode spec names it: "h264", "hevc", "av1"
// or "vp9".
type Codec = string

// Accelerators a worker pool can declare: the API contract's.
const (
	AcceleratorCPU    = apiv1.AcceleratorCPU
	AcceleratorNVIDIA = apiv1.AcceleratorNVIDIA
)

// EncoderChoice is the FFmpeg encoder used for one codec, recorded in the
// job's outputs so a silent fall back from GPU to CPU is visible.
type EncoderChoice struct {
	Codec   Codec
	Encoder string // FFmpeg encoder name, e.g. "h264_nvenc" or "libx264"
	// Hardware is true for NVENC encoders.
	Hardware bool
	// Fallback is empty when the preferred encoder was used, otherwise why
	// it was not, e.g. "h264_nvenc probe failed: Cannot load libcuda.so.1".
	Fallback string
}

// hardwareEncoders are the NVENC encoders by codec. VP9 has none.
var hardwareEncoders = map[Codec]string{
	encodespec.CodecH264: "h264_nvenc",
	encodespec.CodecHEVC: "hevc_nvenc",
	encodespec.CodecAV1:  "av1_nvenc",
}

// softwareEncoders are the CPU encoders by codec, in order of preference:
// SVT-AV1 is far faster than libaom at similar quality.
var softwareEncoders = map[Codec][]string{
	encodespec.CodecH264: {"libx264"},
	encodespec.CodecHEVC: {"libx265"},
	encodespec.CodecAV1:  {"libsvtav1", "libaom-av1"},
	encodespec.CodecVP9:  {"libvpx-vp9"},
}

// ChooseEncoders picks one encoder per distinct codec, in the order the
// codecs are given. On the "nvidia" accelerator it uses the codec's NVENC
// encoder when available reports it and probeEncode can encode a frame with
// it (a GPU node without a working driver lists NVENC but cannot open it);
// otherwise, and always on "cpu" (or ""), it uses the CPU encoder and says
// in Fallback why the preferred one was not used. available and
// probeEncode are parameters so the choice is tested without a GPU; use
// AvailableEncoders and DefaultProbeEncode in production. It fails for an
// unknown accelerator or codec, for a codec without any usable encoder, and
// when ctx ends during a probe.
func ChooseEncoders(ctx context.Context, accelerator string, codecs []string, available func(encoder string) bool, probeEncode func(ctx context.Context, encoder string) error) ([]EncoderChoice, error) {
	switch accelerator {
	case "", AcceleratorCPU, AcceleratorNVIDIA:
	default:
		return nil, fmt.Errorf("choose encoders: unknown accelerator %q (want %q or %q)", accelerator, AcceleratorCPU, AcceleratorNVIDIA)
	}
	var choices []EncoderChoice
	seen := make(map[string]bool, len(codecs))
	for _, codec := range codecs {
		if seen[codec] {
			continue
		}
		seen[codec] = true
		soft, known := softwareEncoders[codec]
		if !known {
			return nil, fmt.Errorf("choose encoders: unknown codec %q", codec)
		}

		fallback := ""
		if accelerator == AcceleratorNVIDIA {
			hw, ok := hardwareEncoders[codec]
			switch {
			case !ok:
				fallback = fmt.Sprintf("no NVENC encoder exists for %s", codec)
			case !available(hw):
				fallback = fmt.Sprintf("%s is not in this FFmpeg build", hw)
			default:
				err := probeEncode(ctx, hw)
				if err == nil {
					choices = append(choices, EncoderChoice{Codec: codec, Encoder: hw, Hardware: true})
					continue
				}
				if ctx.Err() != nil {
					return nil, fmt.Errorf("choose encoders: probe %s: %w", hw, ctx.Err())
				}
				fallback = fmt.Sprintf("%s probe failed: %s", hw, err.Error())
			}
		}

		i := slices.IndexFunc(soft, available)
		if i < 0 {
			return nil, fmt.Errorf("choose encoders: no encoder for %s in this FFmpeg build (need one of %s)", codec, strings.Join(soft, ", "))
		}
		if i > 0 {
			missing := strings.Join(soft[:i], ", ") + " not in this FFmpeg build"
			if fallback == "" {
				fallback = missing
			} else {
				fallback += "; " + missing
			}
		}
		choices = append(choices, EncoderChoice{Codec: codec, Encoder: soft[i], Fallback: fallback})
	}
	return choices, nil
}

// AvailableEncoders lists the encoders of ffmpegBin by parsing
// `ffmpeg -hide_banner -encoders`, and returns a lookup for ChooseEncoders.
func AvailableEncoders(ctx context.Context, ffmpegBin string) (func(string) bool, error) {
	var out, stderr bytes.Buffer
	cmd := command(ctx, ffmpegBin, "-nostdin", "-hide_banner", "-encoders")
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("list ffmpeg encoders: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	set := parseEncoders(out.String())
	if len(set) == 0 {
		return nil, fmt.Errorf("list ffmpeg encoders: no encoders in the output of %s -encoders", ffmpegBin)
	}
	return func(name string) bool { return set[name] }, nil
}

// parseEncoders reads the table after the "------" line: each row is a
// six-character capability field ("V....D") and the encoder name.
func parseEncoders(out string) map[string]bool {
	set := make(map[string]bool)
	sc := bufio.NewScanner(strings.NewReader(out))
	table := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !table {
			table = strings.HasPrefix(line, "------")
			continue
		}
		fields := strings.Fields(line)
		if len(fields) >= 2 && len(fields[0]) == 6 {
			set[fields[1]] = true
		}
	}
	return set
}

// probeTimeout bounds a probe encode: a broken GPU driver can hang on
// initialisation, and a fall back to CPU is better than a stuck job.
const probeTimeout = 30 * time.Second

// DefaultProbeEncode returns the production probeEncode for ChooseEncoders:
// it encodes one 256x144 frame with the encoder and discards it, which
// fails unless the GPU, driver and encoder session actually work.
func DefaultProbeEncode(ffmpegBin string) func(ctx context.Context, encoder string) error {
	return func(ctx context.Context, encoder string) error {
		ctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		stderr := newTailBuffer(5)
		cmd := command(ctx, ffmpegBin, "-nostdin", "-hide_banner", "-v", "error",
			"-f", "lavfi", "-i", "color=s=256x144:d=0.04", "-frames:v", "1", "-c:v", encoder, "-f", "null", "-")
		cmd.Stderr = stderr
		if err := cmd.Run(); err != nil {
			if lines := stderr.Lines(); len(lines) > 0 {
				return fmt.Errorf("%s (%w)", stripLogPrefix(lines[0]), err)
			}
			return err
		}
		return nil
	}
}
