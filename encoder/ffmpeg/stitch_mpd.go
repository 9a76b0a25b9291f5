package ffmpeg

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// writeStitchedMPD writes the MPD of a stitched DASH or CMAF encode from
// its tracks' init segments and media segments (the DASH layout:
// init_<i>.m4s and seg_<i>_NNNNN.m4s numbered from 1, listed by
// media_<i>.m3u8), in the form FFmpeg's DASH muxer writes for a whole
// encode: one video adaptation set of every rendition, one audio
// adaptation set per audio rendition, a SegmentTemplate with a
// SegmentTimeline per representation. Durations, codecs and bandwidths
// come from the segments themselves; BANDWIDTH is the peak rate as the
// HLS master counts it, which a DASH client may read as the rate it
// needs to keep up.
func writeStitchedMPD(cmd Command, in MediaInfo) error {
	var video, audio []mpdTrack
	for _, o := range cmd.ExpectedOutputs {
		if o.Kind != KindVideo && o.Kind != KindAudio {
			continue
		}
		playlist, ok := mediaPlaylistOf(o)
		if !ok {
			continue
		}
		i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(o.Name, "init_"), ".m4s"))
		if err != nil {
			return fmt.Errorf("write %s: %s is not a DASH init segment", dashManifest, o.Name)
		}
		tl, err := readTimeline(cmd.OutDir, o.Name, playlist, cmd.Remote)
		if err != nil {
			return fmt.Errorf("write %s: %w", dashManifest, err)
		}
		initData, err := os.ReadFile(filepath.Join(cmd.OutDir, o.Name))
		if err != nil {
			return fmt.Errorf("write %s: %w", dashManifest, err)
		}
		t := mpdTrack{index: i, out: o, tl: tl}
		if t.codec, t.chans, err = codecString(initData); err != nil {
			return fmt.Errorf("write %s: %s: %w", dashManifest, o.Name, err)
		}
		if o.Kind == KindVideo {
			video = append(video, t)
		} else {
			audio = append(audio, t)
		}
	}
	if len(video) == 0 {
		return fmt.Errorf("write %s: no video renditions", dashManifest)
	}
	byIndex := func(a, b mpdTrack) int { return a.index - b.index }
	slices.SortFunc(video, byIndex)
	slices.SortFunc(audio, byIndex)

	var longest, maxSeg float64
	for _, t := range append(slices.Clone(video), audio...) {
		ts := float64(t.tl.timescale)
		longest = max(longest, float64(t.tl.end-t.tl.starts[0])/ts)
		for k := range t.tl.starts {
			maxSeg = max(maxSeg, float64(t.segmentEnd(k)-t.tl.starts[k])/ts)
		}
	}

	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	fmt.Fprintf(&b, `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" mediaPresentationDuration="%s" maxSegmentDuration="%s" minBufferTime="%s">`+"\n",
		isoDuration(longest), isoDuration(maxSeg), isoDuration(2*maxSeg))
	b.WriteString("\t<Period id=\"0\" start=\"PT0.0S\">\n")
	v := video[0]
	maxW, maxH := 0, 0
	for _, t := range video {
		maxW, maxH = max(maxW, t.out.Width), max(maxH, t.out.Height)
	}
	fmt.Fprintf(&b, "\t\t<AdaptationSet id=\"0\" contentType=\"video\" startWithSAP=\"1\" segmentAlignment=\"true\" bitstreamSwitching=\"true\" frameRate=\"%s\" maxWidth=\"%d\" maxHeight=\"%d\" par=\"%s\">\n",
		strings.Replace(ratio(int64(v.tl.timescale), int64(v.tl.usual)), ":", "/", 1), maxW, maxH, ratio(int64(in.Width), int64(in.Height)))
	for _, t := range video {
		sar := ratio(int64(in.Width)*int64(t.out.Height), int64(in.Height)*int64(t.out.Width))
		fmt.Fprintf(&b, "\t\t\t<Representation id=\"%d\" mimeType=\"video/mp4\" codecs=\"%s\" bandwidth=\"%d\" width=\"%d\" height=\"%d\" sar=\"%s\">\n",
			t.index, t.codec, t.bandwidth(), t.out.Width, t.out.Height, sar)
		t.template(&b)
		b.WriteString("\t\t\t</Representation>\n")
	}
	b.WriteString("\t\t</AdaptationSet>\n")
	for k, t := range audio {
		lang := ""
		if l := t.out.Attributes[apiv1.AudioAttrLanguage]; l != "" && l != "und" {
			lang = fmt.Sprintf(" lang=%q", l)
		}
		fmt.Fprintf(&b, "\t\t<AdaptationSet id=\"%d\" contentType=\"audio\" startWithSAP=\"1\" segmentAlignment=\"true\" bitstreamSwitching=\"true\"%s>\n", k+1, lang)
		fmt.Fprintf(&b, "\t\t\t<Representation id=\"%d\" mimeType=\"audio/mp4\" codecs=\"%s\" bandwidth=\"%d\" audioSamplingRate=\"%d\">\n",
			t.index, t.codec, t.bandwidth(), t.tl.timescale)
		fmt.Fprintf(&b, "\t\t\t\t<AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"%d\" />\n", t.chans)
		t.template(&b)
		b.WriteString("\t\t\t</Representation>\n\t\t</AdaptationSet>\n")
	}
	b.WriteString("\t</Period>\n</MPD>\n")
	if err := writeAtomically(filepath.Join(cmd.OutDir, dashManifest), []byte(b.String())); err != nil {
		return fmt.Errorf("write %s: %w", dashManifest, err)
	}
	return nil
}

// mpdTrack is one representation of a stitched MPD.
type mpdTrack struct {
	index int // the stream index in the DASH layout's names
	out   Output
	tl    trackTimeline
	codec string // RFC 6381, from the init segment
	chans int    // audio channels
}

// segmentEnd is where segment k of the track ends: the next segment's
// start, or the track's end.
func (t mpdTrack) segmentEnd(k int) uint64 {
	if k+1 < len(t.tl.starts) {
		return t.tl.starts[k+1]
	}
	return t.tl.end
}

// bandwidth is the track's peak bit rate over runs of segments (see
// segmentBitrates), at least 1.
func (t mpdTrack) bandwidth() int {
	ts := float64(t.tl.timescale)
	durations := make([]float64, len(t.tl.starts))
	target := 0.0
	for k := range t.tl.starts {
		durations[k] = float64(t.segmentEnd(k)-t.tl.starts[k]) / ts
		target = max(target, math.Round(durations[k]))
	}
	peak, _ := segmentBitrates(t.tl.sizes, durations, max(1, target))
	return max(1, peak)
}

// template writes the representation's SegmentTemplate: the DASH
// layout's names, numbered from 1, and a SegmentTimeline with runs of
// equal durations folded into r.
func (t mpdTrack) template(b *strings.Builder) {
	fmt.Fprintf(b, "\t\t\t\t<SegmentTemplate timescale=\"%d\" initialization=\"init_$RepresentationID$.m4s\" media=\"seg_$RepresentationID$_$Number%%05d$.m4s\" startNumber=\"1\">\n", t.tl.timescale)
	b.WriteString("\t\t\t\t\t<SegmentTimeline>\n")
	for k := 0; k < len(t.tl.starts); {
		d := t.segmentEnd(k) - t.tl.starts[k]
		r := 0
		for k+r+1 < len(t.tl.starts) && t.segmentEnd(k+r+1)-t.tl.starts[k+r+1] == d {
			r++
		}
		at := ""
		if k == 0 {
			at = fmt.Sprintf(" t=\"%d\"", t.tl.starts[0])
		}
		repeat := ""
		if r > 0 {
			repeat = fmt.Sprintf(" r=\"%d\"", r)
		}
		fmt.Fprintf(b, "\t\t\t\t\t\t<S%s d=\"%d\"%s />\n", at, d, repeat)
		k += r + 1
	}
	b.WriteString("\t\t\t\t\t</SegmentTimeline>\n\t\t\t\t</SegmentTemplate>\n")
}

// isoDuration writes seconds as an ISO 8601 duration, as the MPD wants.
func isoDuration(seconds float64) string {
	return "PT" + strconv.FormatFloat(math.Ceil(seconds*1000)/1000, 'f', -1, 64) + "S"
}

// ratio writes num:den reduced ("16:9", "1:1"); "1:1" for a zero.
func ratio(num, den int64) string {
	if num <= 0 || den <= 0 {
		return "1:1"
	}
	g := gcd(num, den)
	return fmt.Sprintf("%d:%d", num/g, den/g)
}
