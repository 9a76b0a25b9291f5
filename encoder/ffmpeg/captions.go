package ffmpeg

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/mpegflow/mpegflow/internal/caption"
)

// Caption is a caption file given with the job (a sidecar), on local disk.
type Caption struct {
	// File is its local path.
	File string
	// Language is its BCP 47 tag as the job gives it ("fr", "pt-BR").
	Language string
	// Format is caption.FormatSRT or caption.FormatVTT.
	Format string
	// GivenFormat is the format the job gave, once ConvertCaptions has
	// made File WebVTT.
	GivenFormat string
}

// sidecarDemuxers are the FFmpeg demuxers a caption file is read with, by
// format: the format is pinned, never probed, so a file is read as the
// subtitles it claims to be or not at all.
var sidecarDemuxers = map[string]string{caption.FormatSRT: "srt", caption.FormatVTT: "webvtt"}

// sourceCodecs are the subtitle codecs FFmpeg reports for each format, as
// recorded in SubtitleAttrSourceCodec.
var sourceCodecs = map[string]string{caption.FormatSRT: "subrip", caption.FormatVTT: "webvtt"}

// ConvertCaptions turns each caption file into a checked WebVTT file in dir
// (caption_<n>.vtt) before anything is encoded, and returns them with
// Format caption.FormatVTT for Plan. FFmpeg reads each file with the
// demuxer of its stated format and the file protocol only. A file FFmpeg
// cannot read, one with no cue, or one with a cue ending after the input
// (durationSeconds, with the usual tolerance) is the job's fault: the
// error is an *InputError naming the file by its position and language.
func ConvertCaptions(ctx context.Context, ffmpegBin string, captions []Caption, durationSeconds float64, dir string) ([]Caption, error) {
	out := make([]Caption, 0, len(captions))
	for i, c := range captions {
		lang, err := caption.Language(c.Language)
		if err != nil {
			return nil, &InputError{Msg: fmt.Sprintf("caption file %d: its language %s", i+1, err)}
		}
		demuxer, ok := sidecarDemuxers[c.Format]
		if !ok {
			return nil, &InputError{Msg: fmt.Sprintf("caption file %d (%s): unknown format %q", i+1, lang, c.Format)}
		}
		src, err := filepath.Abs(c.File)
		if err != nil {
			return nil, fmt.Errorf("caption file %d: %w", i+1, err)
		}
		dst := filepath.Join(dir, fmt.Sprintf("caption_%d.vtt", i))
		stderr := newTailBuffer(10)
		cmd := command(ctx, ffmpegBin, "-nostdin", "-hide_banner", "-y", "-loglevel", "error",
			"-f", demuxer, "-format_whitelist", demuxer, "-protocol_whitelist", "file", "-i", "file:"+src,
			"-map", "0:s:0", "-c:s", "webvtt", "-map_metadata", "-1", "-f", "webvtt", "file:"+dst)
		cmd.Stderr = stderr
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("convert caption file %d: %w", i+1, ctx.Err())
			}
			if exitErr := (*exec.ExitError)(nil); errors.As(err, &exitErr) {
				return nil, &InputError{Msg: fmt.Sprintf("caption file %d (%s) is not a readable %s file", i+1, lang, formatName(c.Format))}
			}
			return nil, fmt.Errorf("convert caption file %d: %w: %s", i+1, err, strings.Join(stderr.Lines(), "\n"))
		}
		data, err := os.ReadFile(dst)
		if err != nil {
			return nil, fmt.Errorf("convert caption file %d: %w", i+1, err)
		}
		if problem := cueProblem(data, durationSeconds); problem != "" {
			return nil, &InputError{Msg: fmt.Sprintf("caption file %d (%s, %s): %s", i+1, lang, formatName(c.Format), problem)}
		}
		out = append(out, Caption{File: dst, Language: lang, Format: caption.FormatVTT, GivenFormat: c.Format})
	}
	return out, nil
}

func formatName(format string) string {
	if format == caption.FormatSRT {
		return "SubRip"
	}
	return "WebVTT"
}

// cueProblem says what is wrong with a converted WebVTT file, or "": it
// must hold at least one cue (FFmpeg's demuxers skip what they cannot
// parse, so a file that is not subtitles at all converts to none), each
// ending after it starts and within the input.
func cueProblem(vtt []byte, durationSeconds float64) string {
	if !bytes.HasPrefix(vtt, []byte("WEBVTT")) {
		return "it did not convert to WebVTT"
	}
	cues := 0
	sc := bufio.NewScanner(bytes.NewReader(vtt))
	for sc.Scan() {
		start, end, found := strings.Cut(sc.Text(), " --> ")
		if !found {
			continue
		}
		cues++
		from, err1 := vttSeconds(start)
		to, err2 := vttSeconds(strings.Fields(end + " ")[0])
		switch {
		case err1 != nil || err2 != nil:
			return fmt.Sprintf("cue %d has a malformed timing %q", cues, sc.Text())
		case to < from:
			return fmt.Sprintf("cue %d ends before it starts (%s)", cues, sc.Text())
		case to > durationSeconds+durationTolerance:
			return fmt.Sprintf("cue %d ends at %.3f s, after the video's end (%.3f s)", cues, to, durationSeconds)
		}
	}
	if err := sc.Err(); err != nil {
		return "it could not be read: " + err.Error()
	}
	if cues == 0 {
		return "it holds no cue (is it really a caption file of this format?)"
	}
	return ""
}
