package ffmpeg

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// MediaInfo is what the encoder needs to know about its input.
type MediaInfo struct {
	// DurationSeconds is the video stream's duration (the container's when
	// the stream has none), checked against the last packets so a header
	// cannot claim more than the file holds.
	DurationSeconds float64
	// Width and Height are the frame size as displayed, in square pixels:
	// rotation metadata is applied (FFmpeg autorotates while decoding) and a
	// non-square sample aspect ratio is folded into Width. This is the size
	// to pass to encodespec.Spec.ForSource.
	Width, Height int
	// VideoCodec is FFmpeg's name for the video codec ("h264", "hevc", ...).
	VideoCodec string
	// FrameRate is the average frame rate in frames per second; 0 if unknown.
	FrameRate float64
	// HasVideo is true for every MediaInfo Probe returns without error;
	// HasAudio is true when there is an audio stream to encode.
	HasVideo, HasAudio bool
	// AudioChannels is the first audio stream's channel count.
	AudioChannels int
	// AudioStreams are the input's audio streams, in order.
	AudioStreams []AudioStream
	// Rotation is the display rotation in degrees (0, 90, 180 or 270,
	// counterclockwise, as ffprobe reports it), already reflected in Width
	// and Height.
	Rotation int
	// PixelAspect is the input's sample aspect ratio ("8:9") when its
	// pixels are not square, already folded into Width; "" otherwise.
	PixelAspect string
	// FieldOrder is ffprobe's field order of the video stream:
	// "progressive", "tt", "bb", "tb", "bt" (interlaced), or "" / "unknown".
	FieldOrder string
	// DetectedFieldOrder is what DetectFieldOrder found ("tt", "bb",
	// "progressive"), when the caller ran it; Probe leaves it empty.
	DetectedFieldOrder string
	// ColorTransfer, ColorPrimaries and ColorSpace (the matrix) are the
	// stream's colour metadata as ffprobe names it ("smpte2084" is PQ,
	// "arib-std-b67" HLG; "bt2020"; "bt2020nc").
	ColorTransfer, ColorPrimaries, ColorSpace string
	// Mastering and ContentLight are the HDR metadata of the first frame
	// (read only for PQ and HLG input); nil when it has none.
	Mastering    *MasteringDisplay
	ContentLight *ContentLight
	// VariableFrameRate is true when the stream's average frame rate and
	// its base rate (r_frame_rate) differ by more than 1 %: frames are not
	// evenly spaced.
	VariableFrameRate bool
	// Subtitles are the input's subtitle streams, in order.
	Subtitles []SubtitleStream
	// ClosedCaptions is true when the video carries CEA-608/708 captions
	// (A53 side data), as ffprobe says or as the first frames show.
	ClosedCaptions bool
	// Container is the demuxer the input was probed with ("mov",
	// "matroska", "mpegts", ...), one of the allowed containers. Plan opens
	// the input with exactly this demuxer, so the encode reads the file the
	// way the probe did and never as a playlist or list of other files.
	Container string
}

const (
	// tailWindow is how far before the claimed end Probe starts reading
	// packets to find where the video really ends.
	tailWindow = 5.0
	// durationTolerance is how far the real end of the video, and every
	// output's duration, may be from the claimed duration.
	durationTolerance = 1.0
)

// Probe reads file with ffprobe. Problems with the file itself come back as
// an *InputError with a message for the user; a missing file, a missing
// ffprobe or a cancelled context are plain errors because they are the
// encoder's problem.
//
// The file is media, never instructions: FFmpeg first only names the
// demuxer it would use, and a format outside the allowed containers
// (playlists, concat lists, image sequences, SDP, ...) is refused as an
// "unsupported input container" before any demuxer reads it. Every later
// read, here and in the encode, forces that one demuxer and the file
// protocol alone (see inputOptions).
func Probe(ctx context.Context, ffprobe, file string) (MediaInfo, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return MediaInfo{}, fmt.Errorf("probe %s: %w", file, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return MediaInfo{}, fmt.Errorf("probe %s: %w", file, err)
	}
	if !st.Mode().IsRegular() {
		return MediaInfo{}, fmt.Errorf("probe %s: not a regular file", file)
	}
	if st.Size() == 0 {
		return MediaInfo{}, inputError("the file is empty (0 bytes)")
	}
	url := "file:" + abs
	container, err := detectContainer(ctx, ffprobe, url)
	if err != nil {
		return MediaInfo{}, err
	}
	open := inputOptions(container)

	var stdout bytes.Buffer
	args := append([]string{"-v", "error"}, open...)
	args = append(args, "-print_format", "json", "-show_format", "-show_streams", url)
	if err := runProbe(ctx, ffprobe, &stdout, url, args...); err != nil {
		return MediaInfo{}, err
	}
	var out probeOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return MediaInfo{}, fmt.Errorf("probe %s: decode ffprobe output: %w", file, err)
	}
	info, start, err := out.mediaInfo()
	info.Container = container
	if err != nil {
		return info, err
	}
	if _, hdr := hdrTransfers[info.ColorTransfer]; hdr {
		if info.Mastering, info.ContentLight, err = hdrSideData(ctx, ffprobe, open, url); err != nil {
			return info, err
		}
	}
	if info.ClosedCaptions, err = detectClosedCaptions(ctx, ffprobe, open, url, info.VideoCodec, info.ClosedCaptions); err != nil {
		return info, err
	}

	// Find where the video really ends: from a little before the claimed
	// end, or from the start when no duration is claimed.
	seek := -1.0
	if info.DurationSeconds > tailWindow {
		seek = start + info.DurationSeconds - tailWindow
	}
	first, end, n, err := lastPackets(ctx, ffprobe, open, url, seek)
	if err != nil {
		return info, err
	}
	if n == 0 {
		return info, inputError("the file is truncated or corrupt: no video data could be read near its end")
	}
	if info.DurationSeconds <= 0 {
		start = first
	}
	measured := end - start
	switch {
	case info.DurationSeconds <= 0:
		info.DurationSeconds = measured
	case measured < info.DurationSeconds-durationTolerance:
		return info, inputError(fmt.Sprintf(
			"the file is truncated: its header says the video lasts %.1f s but the video data ends at %.1f s",
			info.DurationSeconds, measured))
	case measured > info.DurationSeconds+durationTolerance:
		info.DurationSeconds = measured // a header that undercounts; trust the data
	}
	if info.DurationSeconds <= 0 {
		return info, inputError("the video has no duration: it holds at most one frame")
	}
	return info, nil
}

// runProbe runs ffprobe with args, writing stdout to w. A failing ffprobe on
// an existing, non-empty file means the file is unreadable, so exit errors
// become *InputError.
func runProbe(ctx context.Context, ffprobe string, w *bytes.Buffer, url string, args ...string) error {
	stderr := newTailBuffer(10)
	cmd := command(ctx, ffprobe, args...)
	cmd.Stdout = w
	cmd.Stderr = stderr
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("ffprobe: %w", ctx.Err())
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return fmt.Errorf("run ffprobe: %w", err)
	}
	return probeFailure(stderr.Lines(), url)
}

// probeFailure is the input error for ffprobe's failure on an existing,
// non-empty file, from the last lines of its stderr.
func probeFailure(lines []string, url string) *InputError {
	if ie := classifyInputFailure(lines, url); ie != nil {
		return ie
	}
	reason := "unknown format"
	if len(lines) > 0 {
		reason = userReason(lines[len(lines)-1], url)
	}
	return inputError("the file could not be read as a video: " + reason)
}

// userReason strips local paths and FFmpeg's "[demuxer @ 0x...]" prefixes
// from one line of FFmpeg output so it can be shown to a user.
func userReason(line, url string) string {
	line = strings.ReplaceAll(line, url+": ", "")
	line = stripLogPrefix(strings.ReplaceAll(line, url, "input"))
	if len(line) > 200 {
		line = line[:200]
	}
	if line == "" {
		return "unknown format"
	}
	return strings.ToLower(line[:1]) + line[1:]
}

// stripLogPrefix removes the "[component @ 0x...] " FFmpeg puts before
// messages.
func stripLogPrefix(line string) string {
	if strings.HasPrefix(line, "[") {
		if i := strings.Index(line, "] "); i > 0 {
			return line[i+2:]
		}
	}
	return line
}

// lastPackets reads the first video stream's packets from seek (or from the
// start when seek < 0) to the end and returns the earliest start, the latest
// end and the number of packets read. It streams ffprobe's output so a full
// scan of a long file takes constant memory. ffprobe's own exit status is
// ignored: a truncated file makes it fail after the last good packet, and
// the packets are what count. open are the input options (inputOptions).
func lastPackets(ctx context.Context, ffprobe string, open []string, url string, seek float64) (first, end float64, n int, err error) {
	args := append([]string{"-v", "error"}, open...)
	args = append(args, "-select_streams", "V:0")
	if seek >= 0 {
		args = append(args, "-read_intervals", strconv.FormatFloat(seek, 'f', 3, 64)+"%")
	}
	args = append(args, "-show_entries", "packet=pts_time,dts_time,duration_time", "-of", "csv=p=0", url)
	cmd := command(ctx, ffprobe, args...)
	cmd.Stderr = newTailBuffer(5)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("probe packets: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, fmt.Errorf("run ffprobe: %w", err)
	}
	first = math.Inf(1)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ",")
		if len(fields) < 3 {
			continue
		}
		ts, ok := parseSeconds(fields[0])
		if !ok {
			if ts, ok = parseSeconds(fields[1]); !ok {
				continue
			}
		}
		dur, _ := parseSeconds(fields[2])
		first = min(first, ts)
		end = max(end, ts+dur)
		n++
	}
	_ = cmd.Wait() // see above: the packets decide
	if ctx.Err() != nil {
		return 0, 0, 0, fmt.Errorf("ffprobe: %w", ctx.Err())
	}
	if n == 0 {
		first = 0
	}
	return first, end, n, nil
}

type probeOutput struct {
	Streams []probeStream `json:"streams"`
	Format  struct {
		Duration  string `json:"duration"`
		StartTime string `json:"start_time"`
	} `json:"format"`
}

type probeStream struct {
	CodecType         string            `json:"codec_type"`
	CodecName         string            `json:"codec_name"`
	Width             int               `json:"width"`
	Height            int               `json:"height"`
	SampleAspectRatio string            `json:"sample_aspect_ratio"`
	FieldOrder        string            `json:"field_order"`
	ClosedCaptions    int               `json:"closed_captions"`
	ColorTransfer     string            `json:"color_transfer"`
	ColorPrimaries    string            `json:"color_primaries"`
	ColorSpace        string            `json:"color_space"`
	AvgFrameRate      string            `json:"avg_frame_rate"`
	RFrameRate        string            `json:"r_frame_rate"`
	Duration          string            `json:"duration"`
	StartTime         string            `json:"start_time"`
	Channels          int               `json:"channels"`
	Tags              map[string]string `json:"tags"`
	Disposition       struct {
		AttachedPic int `json:"attached_pic"`
		Default     int `json:"default"`
		Forced      int `json:"forced"`
	} `json:"disposition"`
	SideDataList []struct {
		SideDataType string  `json:"side_data_type"`
		Rotation     float64 `json:"rotation"`
	} `json:"side_data_list"`
}

// mediaInfo interprets ffprobe's answer; it also returns the video stream's
// start time, against which the last packet's end is measured.
func (p probeOutput) mediaInfo() (MediaInfo, float64, error) {
	var info MediaInfo
	var video *probeStream
	for i := range p.Streams {
		s := &p.Streams[i]
		switch s.CodecType {
		case "video":
			if video == nil && s.Disposition.AttachedPic == 0 {
				video = s
			}
		case "subtitle":
			info.Subtitles = append(info.Subtitles, SubtitleStream{
				Index: len(info.Subtitles), Codec: s.CodecName, Language: s.Tags["language"], Title: s.Tags["title"],
				Default: s.Disposition.Default == 1, Forced: s.Disposition.Forced == 1,
			})
		case "audio":
			info.AudioStreams = append(info.AudioStreams, AudioStream{
				Index: len(info.AudioStreams), Channels: s.Channels, Language: s.Tags["language"], Title: s.Tags["title"],
				Default: s.Disposition.Default == 1,
			})
			if !info.HasAudio {
				info.HasAudio = true
				info.AudioChannels = s.Channels
			}
		}
	}
	if video == nil {
		if info.HasAudio {
			return info, 0, inputError("the file contains only audio; a video stream is required")
		}
		return info, 0, inputError("the file has no video stream")
	}
	info.HasVideo = true
	info.VideoCodec = video.CodecName
	info.ClosedCaptions = video.ClosedCaptions == 1
	if video.CodecName == "" || video.CodecName == "none" {
		return info, 0, inputError("the video stream uses a codec FFmpeg does not know")
	}
	if video.Width <= 0 || video.Height <= 0 {
		return info, 0, inputError("the video stream has no frame size; its codec may be unsupported or the file corrupt")
	}
	info.Width, info.Height = video.Width, video.Height
	if num, den, ok := parseRatio(video.SampleAspectRatio); ok && num > 0 && den > 0 && num != den {
		info.Width = max(2, int(math.Round(float64(info.Width)*float64(num)/float64(den))))
		info.PixelAspect = video.SampleAspectRatio
	}
	info.FieldOrder = video.FieldOrder
	info.ColorTransfer, info.ColorPrimaries, info.ColorSpace = video.ColorTransfer, video.ColorPrimaries, video.ColorSpace
	info.Rotation = video.rotation()
	if info.Rotation == 90 || info.Rotation == 270 {
		info.Width, info.Height = info.Height, info.Width
	}
	info.FrameRate = frameRate(video.AvgFrameRate)
	if r := frameRate(video.RFrameRate); info.FrameRate <= 0 || info.FrameRate > 1000 {
		info.FrameRate = r
	}
	if info.FrameRate > 1000 {
		info.FrameRate = 0
	}
	if avg, base := frameRate(video.AvgFrameRate), frameRate(video.RFrameRate); avg > 0 && base > 0 && base <= 1000 {
		info.VariableFrameRate = math.Abs(avg-base) > 0.01*base
	}

	if d, ok := parseSeconds(video.Duration); ok && d > 0 {
		info.DurationSeconds = d
	} else if d, ok := parseSeconds(p.Format.Duration); ok && d > 0 {
		info.DurationSeconds = d
	}
	start, ok := parseSeconds(video.StartTime)
	if !ok {
		start, _ = parseSeconds(p.Format.StartTime)
	}
	return info, start, nil
}

// rotation returns the display rotation normalised to 0, 90, 180 or 270.
func (s probeStream) rotation() int {
	deg := 0.0
	found := false
	for _, sd := range s.SideDataList {
		if sd.SideDataType == "Display Matrix" {
			deg, found = sd.Rotation, true
			break
		}
	}
	if !found {
		if r, err := strconv.ParseFloat(s.Tags["rotate"], 64); err == nil {
			deg = r
		}
	}
	r := int(math.Round(deg/90)) * 90 % 360
	if r < 0 {
		r += 360
	}
	return r
}

func parseSeconds(s string) (float64, bool) {
	if s == "" || s == "N/A" {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

func parseRatio(s string) (num, den int, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		a, b, found = strings.Cut(s, "/")
	}
	if !found {
		return 0, 0, false
	}
	n, err1 := strconv.Atoi(a)
	d, err2 := strconv.Atoi(b)
	return n, d, err1 == nil && err2 == nil
}

func frameRate(s string) float64 {
	n, d, ok := parseRatio(s)
	if !ok || n <= 0 || d <= 0 {
		return 0
	}
	return float64(n) / float64(d)
}
