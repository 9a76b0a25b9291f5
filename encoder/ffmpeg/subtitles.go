package ffmpeg

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// SubtitleStream is one subtitle stream of the input.
type SubtitleStream struct {
	// Index counts the input's subtitle streams from 0 (FFmpeg's 0:s:N).
	Index int
	// Codec is FFmpeg's name for it ("subrip", "ass", "mov_text", ...).
	Codec string
	// Language and Title are the stream's tags, as written ("eng").
	Language, Title string
	// Default and Forced are its disposition.
	Default, Forced bool
}

// textSubtitleCodecs are the subtitle codecs FFmpeg converts to WebVTT.
// Bitmap subtitles (PGS, DVB, VobSub) are pictures and are not converted.
var textSubtitleCodecs = []string{"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}

// maxSubtitleTracks bounds the tracks converted from one input.
const maxSubtitleTracks = 16

const (
	subtitlesDir   = "subtitles"
	subtitlesGroup = "subs"
)

// Text reports whether FFmpeg can convert the stream to WebVTT.
func (s SubtitleStream) Text() bool { return slices.Contains(textSubtitleCodecs, s.Codec) }

// streamLanguage turns a subtitle or audio stream's language tag (ISO 639-2 "eng", or
// BCP 47) into the BCP 47 tag HLS and DASH use ("en"); "und" when the tag
// is missing or not a language.
func streamLanguage(tag string) string { return encodespec.AudioLanguage(tag) }

// subtitles converts every text subtitle stream of the input (up to
// maxSubtitleTracks) to a WebVTT file, subtitles/<language>.vtt (a second
// track of one language gets "-2", …). For HLS and CMAF packaging each
// also gets a one-segment media playlist, subtitles/<language>.m3u8,
// written by Run and listed in the master playlist; for DASH and CMAF Run
// adds a text adaptation set per track to the MPD.
//
// The job's caption files (sidecars, already WebVTT) follow the input's
// streams: each is another FFmpeg input, written to
// subtitles/<language>.vtt the same way, with the attribute source=sidecar.
// They do not count against maxSubtitleTracks (the API bounds them).
func (p *planner) subtitles() {
	if len(p.renditions) == 0 && !p.wholeInput {
		return
	}
	taken := map[string]bool{}
	n := 0
	for _, s := range p.in.Subtitles {
		if !s.Text() || n == maxSubtitleTracks {
			continue
		}
		n++
		attrs := map[string]string{
			apiv1.SubtitleAttrLanguage: streamLanguage(s.Language), apiv1.SubtitleAttrSourceCodec: s.Codec,
			apiv1.SubtitleAttrDefault: strconv.FormatBool(s.Default), apiv1.SubtitleAttrForced: strconv.FormatBool(s.Forced),
		}
		if s.Title != "" {
			attrs[apiv1.SubtitleAttrTitle] = s.Title
		}
		p.subtitleTrack(fmt.Sprintf("0:s:%d", s.Index), attrs, taken)
	}
	for k, c := range p.captions {
		p.inputs = append(p.inputs, "-f", "webvtt", "-format_whitelist", "webvtt", "-protocol_whitelist", "file", "-i", "file:"+c.File)
		p.subtitleTrack(fmt.Sprintf("%d:s:0", k+1), map[string]string{
			apiv1.SubtitleAttrLanguage: c.Language, apiv1.SubtitleAttrSourceCodec: sourceCodecs[cmp.Or(c.GivenFormat, c.Format)],
			apiv1.SubtitleAttrDefault: "false", apiv1.SubtitleAttrForced: "false", apiv1.SubtitleAttrSource: apiv1.SubtitleSourceSidecar,
		}, taken)
	}
}

// subtitleTrack writes the subtitle stream stream (an FFmpeg stream
// specifier) to subtitles/<language>.vtt, the first name taken does not
// hold ("-2", "-3", … after the language), with its HLS playlist when the
// packaging has HLS.
func (p *planner) subtitleTrack(stream string, attrs map[string]string, taken map[string]bool) {
	lang := attrs[apiv1.SubtitleAttrLanguage]
	name := lang
	for i := 2; taken[name]; i++ {
		name = lang + "-" + strconv.Itoa(i)
	}
	taken[name] = true
	if !slices.Contains(p.dirs, subtitlesDir) {
		p.dirs = append(p.dirs, subtitlesDir)
	}
	file := subtitlesDir + "/" + name + ".vtt"
	p.args = append(p.args, "-map", stream, "-c:s", "webvtt",
		"-map_metadata", "-1", "-map_chapters", "-1", "-f", "webvtt", file)
	rendition := "subtitles-" + name
	p.expected = append(p.expected, Output{Name: file, Kind: KindSubtitles, ContentType: ContentTypeVTT, Rendition: rendition, Attributes: attrs})
	if p.spec.Packaging.HLS() {
		p.expected = append(p.expected, Output{Name: subtitlePlaylistOf(file), Kind: KindPlaylist, ContentType: ContentTypeHLS, Rendition: rendition})
	}
}

// subtitlePlaylistOf names the HLS playlist of a WebVTT file.
func subtitlePlaylistOf(vtt string) string { return strings.TrimSuffix(vtt, ".vtt") + ".m3u8" }

// subtitleTracks are the command's WebVTT outputs.
func subtitleTracks(cmd Command) []Output {
	var out []Output
	for _, o := range cmd.ExpectedOutputs {
		if o.Kind == KindSubtitles {
			out = append(out, o)
		}
	}
	return out
}

// finishSubtitles writes, after FFmpeg, each WebVTT track's HLS playlist
// (one segment lasting the whole input) when the command has a master
// playlist, and each track's text adaptation set when it has an MPD.
func finishSubtitles(cmd Command, durationSeconds float64) error {
	tracks := subtitleTracks(cmd)
	if len(tracks) == 0 {
		return nil
	}
	for _, t := range tracks {
		pl := subtitlePlaylistOf(t.Name)
		if !cmd.expects(pl) {
			continue
		}
		target := max(1, int(math.Ceil(durationSeconds)))
		text := fmt.Sprintf("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:%.6f,\n%s\n#EXT-X-ENDLIST\n",
			target, durationSeconds, path.Base(t.Name))
		if err := writeAtomically(filepath.Join(cmd.OutDir, filepath.FromSlash(pl)), []byte(text)); err != nil {
			return fmt.Errorf("write %s: %w", pl, err)
		}
	}
	if !cmd.expects(dashManifest) {
		return nil
	}
	file := filepath.Join(cmd.OutDir, dashManifest)
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("add subtitles to %s: %w", dashManifest, err)
	}
	end := bytes.LastIndex(data, []byte("</Period>"))
	if end < 0 {
		return fmt.Errorf("add subtitles to %s: the MPD has no Period", dashManifest)
	}
	var sets strings.Builder
	for i, t := range tracks {
		fmt.Fprintf(&sets, "\t\t<AdaptationSet id=\"%d\" contentType=\"text\" mimeType=\"text/vtt\" lang=\"%s\">\n"+
			"\t\t\t<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>\n"+
			"\t\t\t<Representation id=\"%s\" bandwidth=\"%d\">\n\t\t\t\t<BaseURL>%s</BaseURL>\n\t\t\t</Representation>\n"+
			"\t\t</AdaptationSet>\n",
			100+i, t.Attributes[apiv1.SubtitleAttrLanguage], t.Rendition, subtitleBandwidth(cmd.OutDir, t, durationSeconds), t.Name)
	}
	out := slices.Concat(data[:end], []byte(sets.String()), data[end:])
	if err := writeAtomically(file, out); err != nil {
		return fmt.Errorf("add subtitles to %s: %w", dashManifest, err)
	}
	return nil
}

// subtitleBandwidth is a track's size over the input's duration, in bits
// per second, at least 1 (the MPD requires one).
func subtitleBandwidth(outDir string, t Output, durationSeconds float64) int {
	st, err := os.Stat(filepath.Join(outDir, filepath.FromSlash(t.Name)))
	if err != nil || durationSeconds <= 0 {
		return 1
	}
	return max(1, int(math.Ceil(float64(st.Size())*8/durationSeconds)))
}

// checkSubtitles checks a WebVTT track: the WEBVTT signature, and every
// cue's timing well formed and ending within the input's duration.
func (v *verifier) checkSubtitles(o Output, durationSeconds float64) {
	data, ok := v.read(o.Name)
	if !ok {
		return
	}
	if !bytes.HasPrefix(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), []byte("WEBVTT")) {
		v.fail("subtitles %s: not a WebVTT file", o.Name)
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		start, end, found := strings.Cut(sc.Text(), " --> ")
		if !found {
			continue
		}
		from, err1 := vttSeconds(start)
		to, err2 := vttSeconds(strings.Fields(end + " ")[0])
		switch {
		case err1 != nil || err2 != nil:
			v.fail("subtitles %s: bad cue timing %q", o.Name, sc.Text())
		case to < from:
			v.fail("subtitles %s: cue %q ends before it starts", o.Name, sc.Text())
		case to > durationSeconds+durationTolerance:
			v.fail("subtitles %s: cue %q ends after the input (%.2f s)", o.Name, sc.Text(), durationSeconds)
		}
	}
}

// vttSeconds parses a WebVTT timestamp, [hh:]mm:ss.ttt.
func vttSeconds(ts string) (float64, error) {
	parts := strings.Split(ts, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("bad timestamp %q", ts)
	}
	var total float64
	for _, p := range parts {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f < 0 {
			return 0, fmt.Errorf("bad timestamp %q", ts)
		}
		total = total*60 + f
	}
	return total, nil
}
