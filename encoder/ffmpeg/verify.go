package ffmpeg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Verify checks the outputs before anything is uploaded:
//
//   - every expected output is among outputs;
//   - every reference in every playlist and manifest (EXT-X-MAP, segments,
//     variants, EXT-X-MEDIA, DASH templates) resolves to a file in outputs,
//     and the master playlist references every rendition with BANDWIDTH,
//     RESOLUTION and CODECS;
//   - every rendition is probed with ffprobe as a player would read it (an
//     MP4 file, or an init segment followed by its segments in playlist
//     order): the video codec and frame size are the planned ones and the
//     video lasts the input's duration within 1 s; audio has the planned
//     codec and holds data;
//   - the poster decodes as a JPEG of the planned size, and so does every
//     thumbnail (at the poster's size when a poster was planned);
//   - the storyboard's index and sheets agree with the input's duration
//     and with each other (see checkStoryboard).
//
// It reports every problem found, joined, in one error.
func Verify(ctx context.Context, ffprobe string, cmd Command, outputs []Output, in MediaInfo) error {
	v := &verifier{cmd: cmd, have: make(map[string]Output, len(outputs)), tracks: make(map[string][]string), describedBy: make(map[string]string)}
	for _, o := range outputs {
		v.have[o.Name] = o
	}
	for _, e := range cmd.ExpectedOutputs {
		if _, ok := v.have[e.Name]; !ok {
			v.fail("expected output %s is missing", e.Name)
		}
	}
	for _, o := range outputs {
		switch path.Ext(o.Name) {
		case ".m3u8":
			v.checkPlaylist(o)
		case ".mpd":
			v.checkManifest(o)
		}
	}
	for _, e := range cmd.ExpectedOutputs {
		if _, ok := v.have[e.Name]; !ok {
			continue
		}
		switch e.Kind {
		case KindVideo, KindAudio:
			if err := v.checkMedia(ctx, ffprobe, e, in); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("verify outputs: %w", ctx.Err())
				}
				v.errs = append(v.errs, err)
			}
		case KindPoster:
			v.checkImage(e, e.Width, e.Height)
		case KindSubtitles:
			v.checkSubtitles(e, in.DurationSeconds)
		}
	}
	// Thumbnails are found after encoding; they share the poster's planned
	// size when there is one, and must at least decode at their own.
	for _, o := range outputs {
		if o.Kind != KindThumbnail {
			continue
		}
		w, h := o.Width, o.Height
		for _, e := range cmd.ExpectedOutputs {
			if e.Kind == KindPoster {
				w, h = e.Width, e.Height
			}
		}
		v.checkImage(o, w, h)
	}
	if err := v.checkStoryboard(ctx, ffprobe, in); err != nil {
		return fmt.Errorf("verify outputs: %w", err)
	}
	if len(v.errs) > 0 {
		return fmt.Errorf("verify outputs: %w", errors.Join(v.errs...))
	}
	return nil
}

type verifier struct {
	cmd    Command
	have   map[string]Output
	tracks map[string][]string // init segment name -> media segments in order
	// describedBy names the playlist or manifest that listed an init
	// segment's segments first.
	describedBy map[string]string
	errs        []error
}

func (v *verifier) fail(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf(format, args...))
}

func (v *verifier) read(name string) ([]byte, bool) {
	data, err := os.ReadFile(filepath.Join(v.cmd.OutDir, filepath.FromSlash(name)))
	if err != nil {
		v.fail("read %s: %w", name, err)
		return nil, false
	}
	return data, true
}

// ref resolves ref from the file from and checks it is an output.
func (v *verifier) ref(from, ref string) (string, bool) {
	name, err := resolveRef(from, ref)
	if err != nil {
		v.fail("%s: %w", from, err)
		return "", false
	}
	if _, ok := v.have[name]; !ok {
		v.fail("%s references %s, which is not among the outputs", from, name)
		return name, false
	}
	return name, true
}

func (v *verifier) checkPlaylist(o Output) {
	data, ok := v.read(o.Name)
	if !ok {
		return
	}
	pl, err := parseM3U8(data)
	if err != nil {
		v.fail("%s: %w", o.Name, err)
		return
	}
	if len(pl.variants) > 0 {
		v.checkMaster(o.Name, pl)
		return
	}
	if pl.mapURI == "" && len(pl.segments) > 0 && !slices.ContainsFunc(pl.segments, func(s hlsSegment) bool { return path.Ext(s.uri) != ".vtt" }) {
		for _, s := range pl.segments { // a subtitle playlist: WebVTT files, checked on their own
			v.ref(o.Name, s.uri)
		}
		return
	}
	if pl.mapURI == "" {
		v.fail("%s has no EXT-X-MAP init segment", o.Name)
		return
	}
	init, _ := v.ref(o.Name, pl.mapURI)
	if len(pl.segments) == 0 {
		v.fail("%s lists no segments", o.Name)
	}
	var segs []string
	for _, s := range pl.segments {
		if name, ok := v.ref(o.Name, s.uri); ok {
			segs = append(segs, name)
		}
	}
	v.describe(o.Name, init, segs)
}

// describe records the segments that from lists for init. With CMAF
// packaging the MPD and a media playlist both describe each init segment:
// they must list the same files in the same order.
func (v *verifier) describe(from, init string, segs []string) {
	if prev, ok := v.tracks[init]; ok {
		if !slices.Equal(prev, segs) {
			v.fail("%s and %s list different segments for %s", from, v.describedBy[init], init)
		}
		return
	}
	v.tracks[init], v.describedBy[init] = segs, from
}

func (v *verifier) checkMaster(name string, pl hlsPlaylist) {
	referenced := make(map[string]bool)
	for _, m := range pl.media {
		if uri, ok := m["URI"]; ok {
			if n, ok := v.ref(name, uri); ok {
				referenced[n] = true
			}
		}
	}
	for _, variant := range pl.variants {
		for _, attr := range []string{"BANDWIDTH", "RESOLUTION", "CODECS"} {
			if variant.attrs[attr] == "" {
				v.fail("%s: variant %s has no %s", name, variant.uri, attr)
			}
		}
		if n, ok := v.ref(name, variant.uri); ok {
			referenced[n] = true
		}
	}
	for _, e := range v.cmd.ExpectedOutputs {
		if e.Kind == KindPlaylist && e.Rendition != "" && !referenced[e.Name] {
			v.fail("%s does not reference rendition playlist %s", name, e.Name)
		}
	}
}

func (v *verifier) checkManifest(o Output) {
	data, ok := v.read(o.Name)
	if !ok {
		return
	}
	tracks, err := parseMPD(data)
	if err != nil {
		v.fail("%s: %w", o.Name, err)
		return
	}
	for _, t := range tracks {
		if t.file != "" { // a text track: one WebVTT file
			v.ref(o.Name, t.file)
			continue
		}
		init, _ := v.ref(o.Name, t.init)
		if len(t.segments) == 0 {
			v.fail("%s: representation %s lists no segments", o.Name, t.id)
		}
		var segs []string
		for _, s := range t.segments {
			if name, ok := v.ref(o.Name, s); ok {
				segs = append(segs, name)
			}
		}
		v.describe(o.Name, init, segs)
	}
}

// checkMedia probes one rendition: an MP4 file on its own, or an init
// segment followed by its media segments.
func (v *verifier) checkMedia(ctx context.Context, ffprobe string, o Output, in MediaInfo) error {
	files := []string{o.Name}
	if segs, ok := v.tracks[o.Name]; ok {
		files = append(files, segs...)
	} else if _, isFamily := familyOf(o); isFamily {
		return fmt.Errorf("init segment %s is not referenced by any playlist or manifest", o.Name)
	}
	if v.remote(files[1:]) {
		return v.checkRemoteMedia(ctx, ffprobe, o, files[1:], in)
	}
	m, err := measure(ctx, ffprobe, v.cmd.OutDir, files)
	if err != nil {
		return fmt.Errorf("probe %s: %w", o.Name, err)
	}
	var problems []string
	if o.Kind == KindVideo {
		switch m.video {
		case nil:
			problems = append(problems, "no video stream")
		default:
			if m.video.codec != o.Codec {
				problems = append(problems, fmt.Sprintf("video codec %s, want %s", m.video.codec, o.Codec))
			}
			if m.video.width != o.Width || m.video.height != o.Height {
				problems = append(problems, fmt.Sprintf("frame size %dx%d, want %dx%d", m.video.width, m.video.height, o.Width, o.Height))
			}
			if d := m.video.duration(); math.Abs(d-in.DurationSeconds) > durationTolerance {
				problems = append(problems, fmt.Sprintf("video lasts %.2f s, the input %.2f s", d, in.DurationSeconds))
			}
		}
	} else {
		switch {
		case m.audio == nil:
			problems = append(problems, "no audio stream")
		case m.audio.codec != o.Codec:
			problems = append(problems, fmt.Sprintf("audio codec %s, want %s", m.audio.codec, o.Codec))
		case m.audio.packets == 0 || m.audio.duration() <= 0:
			problems = append(problems, "audio holds no data")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("rendition %s (%s): %s", o.Rendition, o.Name, strings.Join(problems, "; "))
	}
	return nil
}

// remote reports whether any of segs is stored elsewhere (Command.Remote)
// rather than in the output directory.
func (v *verifier) remote(segs []string) bool {
	for _, s := range segs {
		if _, ok := v.cmd.Remote[s]; ok {
			if _, err := os.Lstat(filepath.Join(v.cmd.OutDir, filepath.FromSlash(s))); err != nil {
				return true
			}
		}
	}
	return false
}

// checkRemoteMedia checks a rendition whose media segments are stored
// elsewhere (a chunked encode's, each chunk probed as a player reads it
// before upload): ffprobe reads the init segment for the codec and frame
// size, and the segments' facts give the duration and that audio holds
// data. Continuity across segments is CheckSeams'.
func (v *verifier) checkRemoteMedia(ctx context.Context, ffprobe string, o Output, segs []string, in MediaInfo) error {
	m, err := measure(ctx, ffprobe, v.cmd.OutDir, []string{o.Name})
	if err != nil {
		return fmt.Errorf("probe %s: %w", o.Name, err)
	}
	tl, err := readSegments(v.cmd.OutDir, o.Name, segs, v.cmd.Remote)
	if err != nil {
		return fmt.Errorf("rendition %s (%s): %w", o.Rendition, o.Name, err)
	}
	seconds := float64(tl.end-tl.starts[0]) / float64(tl.timescale)
	var problems []string
	s, kind := m.video, "video"
	if o.Kind != KindVideo {
		s, kind = m.audio, "audio"
	}
	switch {
	case s == nil:
		problems = append(problems, "no "+kind+" stream")
	case s.codec != o.Codec:
		problems = append(problems, fmt.Sprintf("%s codec %s, want %s", kind, s.codec, o.Codec))
	case o.Kind == KindVideo && (s.width != o.Width || s.height != o.Height):
		problems = append(problems, fmt.Sprintf("frame size %dx%d, want %dx%d", s.width, s.height, o.Width, o.Height))
	}
	switch {
	case o.Kind == KindVideo && math.Abs(seconds-in.DurationSeconds) > durationTolerance:
		problems = append(problems, fmt.Sprintf("video lasts %.2f s, the input %.2f s", seconds, in.DurationSeconds))
	case o.Kind != KindVideo && seconds <= 0:
		problems = append(problems, "audio holds no data")
	}
	if len(problems) > 0 {
		return fmt.Errorf("rendition %s (%s): %s", o.Rendition, o.Name, strings.Join(problems, "; "))
	}
	return nil
}

func (v *verifier) checkImage(o Output, wantW, wantH int) {
	f, err := os.Open(filepath.Join(v.cmd.OutDir, filepath.FromSlash(o.Name)))
	if err != nil {
		v.fail("read %s: %w", o.Name, err)
		return
	}
	defer f.Close() //nolint:errcheck // opened read-only: closing loses nothing
	img, err := jpeg.Decode(f)
	if err != nil {
		v.fail("%s is not a valid JPEG: %w", o.Name, err)
		return
	}
	if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		v.fail("%s is %dx%d, want %dx%d", o.Name, b.Dx(), b.Dy(), wantW, wantH)
	}
}

// streamMeasure is what ffprobe found for one kind of stream.
type streamMeasure struct {
	codec         string
	width, height int
	packets       int
	first, end    float64
}

func (s *streamMeasure) duration() float64 {
	if s.packets == 0 {
		return 0
	}
	return s.end - s.first
}

type mediaMeasure struct {
	video, audio *streamMeasure
}

// measure runs ffprobe over a file, or over the concatenation of an init
// segment and its media segments (read in order through a pipe, as a
// player reads them), and
// reads every packet's timestamps, so the duration is what the media holds,
// not what a header claims.
func measure(ctx context.Context, ffprobe, outDir string, files []string) (mediaMeasure, error) {
	input := "pipe:0"
	var readers []io.Reader
	if len(files) == 1 {
		// A whole file: let ffprobe open it, so it can seek.
		abs, err := filepath.Abs(filepath.Join(outDir, filepath.FromSlash(files[0])))
		if err != nil {
			return mediaMeasure{}, err
		}
		input = "file:" + abs
	} else {
		for _, name := range files {
			f, err := os.Open(filepath.Join(outDir, filepath.FromSlash(name)))
			if err != nil {
				return mediaMeasure{}, err
			}
			defer f.Close() //nolint:errcheck // opened read-only: closing loses nothing
			readers = append(readers, f)
		}
	}
	cmd := command(ctx, ffprobe, "-v", "error",
		"-show_entries", "stream=codec_type,codec_name,width,height:packet=codec_type,pts_time,dts_time,duration_time",
		"-of", "compact=p=1:nk=0", "-i", input)
	if readers != nil {
		cmd.Stdin = io.MultiReader(readers...)
	}
	stderr := newTailBuffer(5)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return mediaMeasure{}, err
	}
	if err := cmd.Start(); err != nil {
		return mediaMeasure{}, fmt.Errorf("run ffprobe: %w", err)
	}
	var m mediaMeasure
	streams := map[string]*streamMeasure{}
	get := func(kind string) *streamMeasure {
		s, ok := streams[kind]
		if !ok {
			s = &streamMeasure{first: math.Inf(1)}
			streams[kind] = s
		}
		return s
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		section, fields := compactLine(sc.Text())
		kind := fields["codec_type"]
		if kind != "video" && kind != "audio" {
			continue
		}
		s := get(kind)
		switch section {
		case "stream":
			s.codec = fields["codec_name"]
			s.width, _ = strconv.Atoi(fields["width"])
			s.height, _ = strconv.Atoi(fields["height"])
		case "packet":
			ts, ok := parseSeconds(fields["pts_time"])
			if !ok {
				if ts, ok = parseSeconds(fields["dts_time"]); !ok {
					continue
				}
			}
			d, _ := parseSeconds(fields["duration_time"])
			s.packets++
			s.first = min(s.first, ts)
			s.end = max(s.end, ts+d)
		}
	}
	waitErr := cmd.Wait()
	if waitErr != nil {
		return m, fmt.Errorf("ffprobe: %w: %s", waitErr, stderr.String())
	}
	m.video, m.audio = streams["video"], streams["audio"]
	return m, nil
}

// compactLine splits one line of ffprobe's "compact=p=1:nk=0" output
// ("packet|pts_time=1.0|flags=K_") into its section and its fields.
func compactLine(line string) (section string, fields map[string]string) {
	section, rest, _ := strings.Cut(line, "|")
	fields = map[string]string{}
	for _, kv := range strings.Split(rest, "|") {
		k, v, _ := strings.Cut(kv, "=")
		fields[k] = v
	}
	return section, fields
}
