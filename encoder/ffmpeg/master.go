package ffmpeg

import (
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// hlsTrack is one HLS rendition as the master playlist describes it.
type hlsTrack struct {
	out      Output // the init segment's expected output
	playlist string // name of its media playlist
	codecs   string
	channels int
	peak     int // bits per second
	average  int
}

// writeMaster writes master.m3u8 after FFmpeg has finished, from the media
// playlists and segments on disk. BANDWIDTH is the peak segment bit rate
// as RFC 8216 defines it (the highest rate over any run of segments lasting
// 0.5 to 1.5 target durations), plus the audio group's; CODECS comes from
// each init segment's codec configuration, so every codec gets a correct
// value (FFmpeg 5.1's own master playlist omits CODECS for AV1).
func writeMaster(cmd Command) error {
	var video, audio []hlsTrack
	for _, o := range cmd.ExpectedOutputs {
		playlist, ok := mediaPlaylistOf(o)
		if !ok {
			continue
		}
		t, err := measureHLSTrack(cmd.OutDir, o, playlist, cmd.Remote)
		if err != nil {
			return err
		}
		if o.Kind == KindAudio {
			audio = append(audio, t)
		} else {
			video = append(video, t)
		}
	}
	if len(video) == 0 {
		return fmt.Errorf("write %s: no video renditions", masterPlaylist)
	}

	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	// One group of every audio rendition, the first the default. A variant
	// is played with any of them, so its BANDWIDTH counts the largest.
	const group = "audio"
	var audioPeak, audioAverage int
	for i, a := range audio {
		def := "NO"
		if i == 0 {
			def = "YES"
		}
		lang := ""
		if l := a.out.Attributes[apiv1.AudioAttrLanguage]; l != "" && l != "und" {
			lang = ",LANGUAGE=" + hlsQuote(l)
		}
		name := a.out.Rendition
		if title := a.out.Attributes[apiv1.AudioAttrTitle]; title != "" {
			name = title
		}
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=%q,NAME=%s%s,DEFAULT=%s,AUTOSELECT=YES,CHANNELS=\"%d\",URI=%q\n",
			group, hlsQuote(name), lang, def, a.channels, a.playlist)
		audioPeak, audioAverage = max(audioPeak, a.peak), max(audioAverage, a.average)
	}
	subs := subtitleTracks(cmd)
	yesNo := map[string]string{"true": "YES", "false": "NO"}
	for _, s := range subs {
		name := s.Attributes[apiv1.SubtitleAttrTitle]
		if name == "" {
			name = strings.TrimPrefix(s.Rendition, "subtitles-")
		}
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=%q,NAME=%s,LANGUAGE=%s,DEFAULT=%s,AUTOSELECT=YES,FORCED=%s,URI=%q\n",
			subtitlesGroup, hlsQuote(name), hlsQuote(s.Attributes[apiv1.SubtitleAttrLanguage]), yesNo[s.Attributes[apiv1.SubtitleAttrDefault]],
			yesNo[s.Attributes[apiv1.SubtitleAttrForced]], subtitlePlaylistOf(s.Name))
	}
	// Closed captions ride in the video; the group names CEA-608 channel
	// 1, the channel captions are nearly always on. Variants without them
	// (a rendition that could not carry them) leave the attribute out:
	// RFC 8216 allows NONE only when no variant has captions.
	anyCC := slices.ContainsFunc(video, func(v hlsTrack) bool { return carriesClosedCaptions(v.out) })
	if anyCC {
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=%q,NAME=\"CC1\",INSTREAM-ID=\"CC1\",DEFAULT=NO,AUTOSELECT=YES\n", ccGroup)
	}
	for _, v := range video {
		peak, avg, codecs := v.peak+audioPeak, v.average+audioAverage, v.codecs
		if len(audio) > 0 {
			codecs += "," + audio[0].codecs // every rendition has the spec's one audio codec
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=%q,RESOLUTION=%dx%d",
			peak, avg, codecs, v.out.Width, v.out.Height)
		if len(audio) > 0 {
			fmt.Fprintf(&b, ",AUDIO=%q", group)
		}
		if len(subs) > 0 {
			fmt.Fprintf(&b, ",SUBTITLES=%q", subtitlesGroup)
		}
		if r := videoRange(v.out); r != "" {
			fmt.Fprintf(&b, ",VIDEO-RANGE=%s", r)
		}
		if carriesClosedCaptions(v.out) {
			fmt.Fprintf(&b, ",CLOSED-CAPTIONS=%q", ccGroup)
		}
		b.WriteString("\n" + v.playlist + "\n")
	}

	if err := writeAtomically(filepath.Join(cmd.OutDir, masterPlaylist), []byte(b.String())); err != nil {
		return fmt.Errorf("write %s: %w", masterPlaylist, err)
	}
	return nil
}

// mediaPlaylistOf names the HLS media playlist of an init segment: HLS
// packaging's "<rendition>/index.m3u8" beside "<rendition>/init.mp4", or
// CMAF packaging's "media_<i>.m3u8" of "init_<i>.m4s" (the DASH muxer's
// names).
func mediaPlaylistOf(init Output) (string, bool) {
	if init.Kind != KindVideo && init.Kind != KindAudio {
		return "", false
	}
	dir, base := path.Split(init.Name)
	if base == "init.mp4" {
		return dir + "index.m3u8", true
	}
	if i, ok := strings.CutPrefix(base, "init_"); ok && dir == "" {
		if i, ok = strings.CutSuffix(i, ".m4s"); ok {
			return "media_" + i + ".m3u8", true
		}
	}
	return "", false
}

// measureHLSTrack reads one rendition's playlist, init and segment sizes
// (from remote for segments not in outDir).
func measureHLSTrack(outDir string, init Output, playlist string, remote Ledger) (hlsTrack, error) {
	t := hlsTrack{out: init, playlist: playlist}
	data, err := os.ReadFile(filepath.Join(outDir, filepath.FromSlash(t.playlist)))
	if err != nil {
		return t, fmt.Errorf("write %s: read %s: %w", masterPlaylist, t.playlist, err)
	}
	pl, err := parseM3U8(data)
	if err != nil {
		return t, fmt.Errorf("write %s: %s: %w", masterPlaylist, t.playlist, err)
	}
	initData, err := os.ReadFile(filepath.Join(outDir, filepath.FromSlash(init.Name)))
	if err != nil {
		return t, fmt.Errorf("write %s: %w", masterPlaylist, err)
	}
	if t.codecs, t.channels, err = codecString(initData); err != nil {
		return t, fmt.Errorf("write %s: %s: %w", masterPlaylist, init.Name, err)
	}
	sizes := make([]int64, len(pl.segments))
	durations := make([]float64, len(pl.segments))
	for i, s := range pl.segments {
		name, err := resolveRef(t.playlist, s.uri)
		if err != nil {
			return t, fmt.Errorf("write %s: %s: %w", masterPlaylist, t.playlist, err)
		}
		size, err := segmentSize(outDir, name, remote)
		if err != nil {
			return t, fmt.Errorf("write %s: %w", masterPlaylist, err)
		}
		sizes[i], durations[i] = size, s.duration
	}
	t.peak, t.average = segmentBitrates(sizes, durations, pl.targetDuration)
	return t, nil
}

// segmentBitrates returns the peak and average bit rates of a media
// playlist. The peak is the highest rate of any contiguous run of segments
// lasting 0.5 to 1.5 target durations (RFC 8216 section 4.3.4.2); when no
// run qualifies (a playlist shorter than half a target duration) it is the
// average. Both are rounded up.
func segmentBitrates(sizes []int64, durations []float64, target float64) (peak, average int) {
	var totalBytes int64
	var totalDur float64
	for i := range sizes {
		totalBytes += sizes[i]
		totalDur += durations[i]
	}
	if totalDur <= 0 {
		return 0, 0
	}
	average = int(math.Ceil(float64(totalBytes) * 8 / totalDur))
	best := 0.0
	for i := range sizes {
		var bytes int64
		var dur float64
		for j := i; j < len(sizes); j++ {
			bytes += sizes[j]
			dur += durations[j]
			if dur > 1.5*target {
				break
			}
			if dur >= 0.5*target && dur > 0 {
				best = max(best, float64(bytes)*8/dur)
			}
		}
	}
	if best == 0 {
		return average, average
	}
	return max(int(math.Ceil(best)), average), average
}

// hlsQuote writes s as an HLS quoted-string (RFC 8216, 4.2): between
// double quotes, with no double quote, CR or LF inside and no escapes.
// Titles come from the input's own tags, so a double quote becomes a
// single one and any other control character a space; Go's %q would
// write backslash escapes that players read as the end of the string.
func hlsQuote(s string) string {
	return `"` + strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case unicode.IsControl(r):
			return ' '
		}
		return r
	}, s) + `"`
}
