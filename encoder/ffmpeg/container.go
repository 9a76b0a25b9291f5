package ffmpeg

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// containers are the demuxers an input may be opened with, by the name
// FFmpeg gives each (the name it prints while probing; the first element is
// the one -f takes). Every one of them reads the bytes of the file it is
// given and nothing else. Formats that name other files or URLs are left
// out on purpose, because FFmpeg follows those names: HLS and DASH
// playlists, concat lists, image sequences (image2 patterns), SDP, RTP and
// RTSP descriptions, IMF packages, VobSub indexes, ffmetadata, and anything
// not listed here. An input in another format is refused before any demuxer
// reads it (see detectContainer).
//
// The audio-only formats are here so such an upload gets the precise "only
// audio" refusal from Probe rather than a generic one; they reference
// nothing. Raw elementary streams (h264, hevc, mpegvideo, ...) are left out:
// they carry no timestamps, so Probe could never measure them anyway.
var containers = map[string]bool{
	"mov,mp4,m4a,3gp,3g2,mj2": true, // opened with -enable_drefs 0: no external data references
	"matroska,webm":           true,
	"mpegts":                  true,
	"mxf":                     true,
	"avi":                     true,
	"flv":                     true,
	"live_flv":                true, // FLV recorded from RTMP
	"mpeg":                    true, // MPEG-PS, VOB
	"asf":                     true, // WMV
	"ogg":                     true,
	"dv":                      true,
	"gif":                     true, // animated GIF
	"ivf":                     true, // VP8, VP9 and AV1 as encoders write them
	"wav":                     true, // audio only
	"mp3":                     true,
	"aac":                     true,
	"flac":                    true,
}

// AllowedContainer reports whether name (MediaInfo.Container: the demuxer
// as it is forced) is a demuxer inputs may be read with: what a MediaInfo that did not come from Probe (a split job's task
// gets its probe from another pod) must be checked against.
func AllowedContainer(name string) bool { return containerAllowed(name) }

// forcedName is the name -f and -format_whitelist take for a demuxer: the
// first of its names.
func forcedName(demuxer string) string {
	name, _, _ := strings.Cut(demuxer, ",")
	return name
}

// containerAllowed reports whether name (as forcedName returns it) is one of
// the allowed demuxers.
func containerAllowed(name string) bool {
	for d := range containers {
		if forcedName(d) == name {
			return true
		}
	}
	return false
}

// inputOptions are the options placed before "-i" (FFmpeg) or the input
// URL (ffprobe) so the input is opened by exactly the demuxer the probe
// detected (-f, and -format_whitelist so nothing else can be substituted)
// with the file protocol alone (-protocol_whitelist file: no network, no
// subfile:, data: or concat: URLs). QuickTime data references, which can
// name other files, stay off explicitly (-enable_drefs 0, FFmpeg's default
// too).
func inputOptions(container string) []string {
	return openOptions(container, "file")
}

// remoteInputOptions are inputOptions for an input read over HTTP(S) from
// MpegFlow's own storage (WithPresignedInput): the same demuxer, and the
// protocols an HTTP(S) URL needs instead of file. Over HTTPS the server's
// certificate is verified against the system's trust store (FFmpeg does
// not verify by default); a dropped connection is reopened where it left
// off rather than read as the end of the file.
func remoteInputOptions(container, url string) []string {
	opts := openOptions(container, "http,https,tls,tcp")
	if strings.HasPrefix(url, "https:") {
		opts = append(opts, "-tls_verify", "1")
	}
	return append(opts, "-reconnect", "1", "-reconnect_on_network_error", "1")
}

func openOptions(container, protocols string) []string {
	opts := []string{"-f", container, "-format_whitelist", container, "-protocol_whitelist", protocols}
	if container == "mov" {
		opts = append(opts, "-enable_drefs", "0")
	}
	return opts
}

// detectOnly is a format whitelist that matches no demuxer: FFmpeg probes
// the input, names the demuxer it would use in its refusal and stops before
// that demuxer reads anything.
const detectOnly = "mpegflow-detect-only"

// notOnWhitelist matches FFmpeg's refusal, whose log prefix names the
// demuxer the probe chose: "[hls @ 0x55d2...] Format not on whitelist".
var notOnWhitelist = regexp.MustCompile(`^\[([0-9a-z_,]+) @ [^\]]*\] Format not on whitelist`)

// detectContainer asks FFmpeg which demuxer it would open url with, without
// letting it open any, and returns the name to force it with when it is an
// allowed container. Any other format comes back as an *InputError
// ("unsupported input container"), so a playlist or list that names other
// files is refused before anything reads those files.
func detectContainer(ctx context.Context, ffprobe, url string) (string, error) {
	stderr := newTailBuffer(20)
	cmd := command(ctx, ffprobe, "-hide_banner", "-v", "error",
		"-protocol_whitelist", "file", "-format_whitelist", detectOnly, url)
	cmd.Stderr = stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return "", fmt.Errorf("ffprobe: %w", ctx.Err())
	}
	if err == nil {
		return "", errors.New("detect input container: ffprobe opened the input although no demuxer was allowed")
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return "", fmt.Errorf("run ffprobe: %w", err)
	}
	lines := stderr.Lines()
	for _, line := range lines {
		m := notOnWhitelist.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if !containers[m[1]] {
			return "", refusedContainer(m[1])
		}
		return forcedName(m[1]), nil
	}
	// No demuxer recognised the input at all.
	return "", probeFailure(lines, url)
}

// refusedContainer is the input error for a demuxer outside containers.
func refusedContainer(demuxer string) *InputError {
	prefix := "unsupported input container (" + demuxer + "): "
	switch {
	case demuxer == "tty":
		return inputError(prefix + "the file is text, not a video")
	case demuxer == "image2" || demuxer == "image2pipe" || strings.HasSuffix(demuxer, "_pipe"):
		return inputError(prefix + "the file is a still image or an image sequence, not a video")
	}
	return inputError(prefix + "upload a single media file in a common container (MP4, MOV, MKV, WebM, " +
		"MPEG-TS, MXF, AVI, FLV, ...); playlists (HLS, DASH), concat lists, image sequences, stream " +
		"descriptions (SDP) and other formats that can refer to other files are not accepted")
}
