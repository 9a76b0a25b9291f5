package ffmpeg

import (
	"fmt"
	"strconv"
	"strings"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// AudioStream is one audio stream of the input.
type AudioStream struct {
	// Index counts the input's audio streams from 0 (FFmpeg's 0:a:N).
	Index int
	// Channels is its channel count.
	Channels int
	// Language and Title are its tags, as written ("eng").
	Language, Title string
	// Default is its disposition.
	Default bool
}

// maxAudioTracks bounds the audio renditions made from one input.
const maxAudioTracks = encodespec.MaxAudioTracks

// plannedAudio is one audio rendition: a stream of the input, encoded once
// and shared by every video rendition.
type plannedAudio struct {
	label  string // filter output label
	stream AudioStream
	lang   string // BCP 47, "und" when the stream does not say
	first  bool
}

// audioStreams are the input's audio streams the spec keeps (all, or
// those Audio.Languages and Audio.StreamIndexes choose), at most
// maxAudioTracks, in the input's order. An input with audio none of whose
// streams is chosen is an *InputError: the job asked for audio the input
// does not have.
func (p *planner) audioStreams() ([]AudioStream, error) {
	a := p.spec.Audio
	if a == nil || !p.in.HasAudio || (len(p.spec.Renditions) == 0 && !p.wholeInput) {
		return nil, nil
	}
	streams := p.in.AudioStreams
	if len(streams) == 0 { // a MediaInfo made by hand: the first stream
		streams = []AudioStream{{Channels: p.in.AudioChannels}}
	}
	var kept []AudioStream
	for _, s := range streams {
		if a.Keeps(s.Index, s.Language) && len(kept) < maxAudioTracks {
			kept = append(kept, s)
		}
	}
	if len(kept) == 0 {
		have := make([]string, len(streams))
		for i, s := range streams {
			have[i] = fmt.Sprintf("%d (%s)", s.Index, streamLanguage(s.Language))
		}
		return nil, &InputError{Msg: fmt.Sprintf("the spec's audio languages %v and stream indexes %v choose none of the input's audio streams: %s",
			a.Languages, a.StreamIndexes, strings.Join(have, ", "))}
	}
	return kept, nil
}

// planAudio adds an audio chain per audio stream the spec keeps (see
// audioStreams), each loudness-normalised when the spec asks and
// resampled to the spec's layout. An input with one audio stream gets one
// rendition, named and placed as before several were made.
func (p *planner) planAudio() {
	a := p.spec.Audio
	for k, s := range p.keptAudio {
		pa := plannedAudio{label: fmt.Sprintf("aout%d", k), stream: s, lang: streamLanguage(s.Language), first: k == 0}
		if k == 0 {
			pa.label = "aout"
		}
		chain := fmt.Sprintf("[0:a:%d]", s.Index)
		if l := a.Loudnorm; l != nil {
			chain += fmt.Sprintf("loudnorm=I=%s:TP=%s:LRA=%s,", formatFloat(l.IntegratedLUFS), formatFloat(l.TruePeakDB), formatFloat(l.LRA))
		}
		chain += fmt.Sprintf("aresample=%d,aformat=sample_rates=%d:channel_layouts=%s[%s]",
			audioSampleRate, audioSampleRate, channelLayout(a.Channels), pa.label)
		p.chains = append(p.chains, chain)
		p.audios = append(p.audios, pa)
	}
}

// name is the rendition's name, the first free of "audio" (the first
// track) or "audio_<language>", then "_2", "_3", ….
func (a plannedAudio) name(taken map[string]bool) string {
	base := "audio"
	if !a.first {
		base = "audio_" + a.lang
	}
	name := base
	for n := 2; taken[name]; n++ {
		name = base + "_" + strconv.Itoa(n)
	}
	return name
}

// languageArgs tag the output stream (spec, e.g. ":s:a:0") with the
// input's language tag, which the MP4 and DASH muxers carry; nothing when
// the input has none.
func (a plannedAudio) languageArgs(spec string) []string {
	if a.stream.Language == "" {
		return nil
	}
	return []string{"-metadata" + spec, "language=" + a.stream.Language}
}

// attributes record the rendition's language (and title) on its outputs;
// nil for a stream that says nothing.
func (a plannedAudio) attributes() map[string]string {
	if a.stream.Language == "" && a.stream.Title == "" {
		return nil
	}
	attrs := map[string]string{apiv1.AudioAttrLanguage: a.lang}
	if a.stream.Title != "" {
		attrs[apiv1.AudioAttrTitle] = a.stream.Title
	}
	return attrs
}
