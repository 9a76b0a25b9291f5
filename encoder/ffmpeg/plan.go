package ffmpeg

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/caption"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// Output kinds, as the job records them (api/v1's Output… names).
const (
	KindVideo     = apiv1.OutputVideo     // a rendition's MP4 file, init segment or media segment
	KindAudio     = apiv1.OutputAudio     // the shared audio rendition's init or media segment
	KindPlaylist  = apiv1.OutputPlaylist  // an HLS media or master playlist
	KindManifest  = apiv1.OutputManifest  // the DASH MPD
	KindThumbnail = apiv1.OutputThumbnail // an interval thumbnail
	KindPoster    = apiv1.OutputPoster    // the poster frame
	// KindStoryboard is the storyboard's WebVTT index; its attributes
	// describe the grid (see storyboardAttributes).
	KindStoryboard = apiv1.OutputStoryboard
	// KindStoryboardSheet is one JPEG sprite sheet of the storyboard.
	KindStoryboardSheet = apiv1.OutputStoryboardSheet
	// KindSubtitles is a WebVTT subtitle track (see subtitles.go).
	KindSubtitles = apiv1.OutputSubtitles
)

// Content types of the files the encoder writes.
const (
	ContentTypeHLS      = "application/vnd.apple.mpegurl"
	ContentTypeDASH     = "application/dash+xml"
	ContentTypeSegment  = "video/iso.segment"
	ContentTypeMP4      = "video/mp4"
	ContentTypeAudioMP4 = "audio/mp4"
	ContentTypeJPEG     = "image/jpeg"
	ContentTypeVTT      = "text/vtt"
)

// Output is one file the encode produces.
type Output struct {
	// Name is the path relative to the output directory, with forward
	// slashes; it is also the object key suffix when uploaded.
	Name string
	// Kind is one of the Kind constants.
	Kind string
	// ContentType is the MIME type to upload the file with.
	ContentType string
	// Rendition is the rendition name for video files and their playlists,
	// the audio rendition's name ("audio") for audio files, "" otherwise.
	Rendition string
	// Width, Height and Codec describe the rendition (video: frame size and
	// codec; audio: codec only; images: their size).
	Width, Height int
	Codec         string
	// Attributes are further kind-specific facts recorded on the job (the
	// storyboard index's grid); nil for most outputs.
	Attributes map[string]string
}

// Command is one planned FFmpeg run.
type Command struct {
	// Args are FFmpeg's arguments (without the binary). Output names in
	// them are relative: Run starts FFmpeg in OutDir.
	Args []string
	// OutDir is the directory every output is written under.
	OutDir string
	// Dirs are the directories under OutDir (forward slashes) that must
	// exist before FFmpeg starts; Run creates them.
	Dirs []string
	// ExpectedOutputs are the outputs known before encoding: playlists,
	// manifests, MP4 files, init segments and the poster. Media segments
	// and interval thumbnails are found by Collect afterwards.
	ExpectedOutputs []Output
	// Encoders are the encoder choices the command uses, for the job record.
	Encoders []EncoderChoice
	// Storyboard is the planned storyboard, nil when the spec has none; Run
	// writes its WebVTT index and Verify checks it against the sheets.
	Storyboard *encodespec.StoryboardLayout
	// Packaging is the spec's packaging (Stitch joins chunks by it).
	Packaging encodespec.Packaging
	// Remote lists the media segments of this output that are stored
	// elsewhere, not in OutDir: a chunked encode's segments, which its
	// parts upload to their final keys. Stitch, Collect, Verify and
	// CheckSeams take their facts from here (see Ledger).
	Remote Ledger
	// nothing is set on a chunked encode's whole-input part that has
	// nothing to encode (no audio, no images): Run only makes OutDir.
	nothing bool
}

const (
	// mp4KeyframeSeconds is the keyframe interval of progressive MP4
	// outputs, which have no segments: short enough for quick seeking.
	mp4KeyframeSeconds = 2.0
	// defaultFrameRate is assumed when the source does not declare one.
	defaultFrameRate = 30.0
	// audioSampleRate is the rate of every audio output; Opus needs 48 kHz
	// and AAC is happiest with it.
	audioSampleRate = 48000
	// muxingQueue lets an output buffer packets while its other streams
	// start (audio runs ahead of video while the encoders fill their
	// lookahead).
	muxingQueue = "1024"
	// masterPlaylist and dashManifest are the fixed top-level names.
	masterPlaylist = "master.m3u8"
	dashManifest   = "manifest.mpd"
	posterName     = "poster.jpg"
	thumbsDir      = "thumbs"
)

// Plan turns a validated spec and a probed input into one FFmpeg command
// that decodes the input once and writes every output (see the package
// documentation for the layout). The spec is fitted to the source first
// (encodespec.Spec.ForSource), so nothing is upscaled; every rendition is
// scaled to its exact even size. Keyframes are placed at every multiple of
// the segment duration in every rendition (fixed GOP, no scene-cut
// keyframes), so segments line up across the ladder. Audio is encoded once
// (loudness-normalised when the spec asks) and shared; an input without
// audio simply gets no audio outputs. Interval thumbnails, the poster and
// the storyboard's sheets come from the same decode as extra filter
// branches; Run writes the storyboard's WebVTT index.
//
// encoders must hold a choice for every codec the spec uses, normally from
// ChooseEncoders. Plan validates the spec again and builds arguments only
// from its validated values. The input is opened with the demuxer Probe
// detected (in.Container) and the file protocol alone, as Probe read it.
//
// opts add the job's caption files (WithCaptions: each becomes a subtitle
// track like the input's own subtitle streams, see subtitles) and a
// per-title analysis's decisions (WithPerTitle).
func Plan(spec encodespec.Spec, in MediaInfo, inputFile, outDir string, encoders []EncoderChoice, opts ...PlanOption) (Command, error) {
	if err := spec.Validate(); err != nil {
		return Command{}, fmt.Errorf("plan encode: invalid encode spec: %w", err)
	}
	if !in.HasVideo || in.Width <= 0 || in.Height <= 0 {
		return Command{}, inputError("the file has no video stream")
	}
	if in.DurationSeconds <= 0 {
		return Command{}, errors.New("plan encode: the input's duration is unknown; probe it first")
	}
	if outDir == "" {
		return Command{}, errors.New("plan encode: empty output directory")
	}
	if in.Container == "" {
		return Command{}, errors.New("plan encode: the input's container is unknown; probe it first")
	}
	if !containerAllowed(in.Container) {
		return Command{}, refusedContainer(in.Container)
	}
	input, err := filepath.Abs(inputFile)
	if err != nil {
		return Command{}, fmt.Errorf("plan encode: input path: %w", err)
	}

	p := &planner{spec: spec.ForSource(in.Width, in.Height), in: in}
	for _, o := range opts {
		o(p)
	}
	if err := p.applyPart(); err != nil {
		return Command{}, err
	}
	if p.inputURL != "" {
		if err := checkInputURL(p.inputURL); err != nil {
			return Command{}, err
		}
	}
	for i, c := range p.captions {
		if c.Format != caption.FormatVTT {
			return Command{}, fmt.Errorf("plan encode: caption file %s is %s; convert it first (ConvertCaptions)", c.File, c.Format)
		}
		abs, err := filepath.Abs(c.File)
		if err != nil {
			return Command{}, fmt.Errorf("plan encode: caption path: %w", err)
		}
		p.captions[i].File = abs
	}
	for _, r := range p.spec.Renditions {
		if _, err := p.encoder(r.Codec, encoders); err != nil {
			return Command{}, err
		}
	}
	if p.keptAudio, err = p.audioStreams(); err != nil {
		return Command{}, err
	}
	p.cond = condition(p.spec.Conditioning, in)
	p.sourceFPS, p.in.FrameRate = in.FrameRate, p.cond.fps
	if err := p.alignChunk(); err != nil {
		return Command{}, err
	}
	p.graph()
	switch p.spec.Packaging {
	case encodespec.PackagingMP4:
		p.mp4()
	case encodespec.PackagingHLS:
		p.hls()
	case encodespec.PackagingDASH:
		p.dash(false)
	case encodespec.PackagingCMAF:
		p.dash(true)
	}
	p.subtitles()
	p.images()
	if err := p.storyboard(); err != nil {
		return Command{}, err
	}
	byName := map[string]plannedRendition{}
	for _, pr := range p.renditions {
		byName[pr.r.Name] = pr
	}
	for i, o := range p.expected {
		if o.Kind == KindVideo {
			p.expected[i].Attributes = maps.Clone(p.cond.attrs)
			pr := byName[o.Rendition]
			if pr.cc != "" {
				p.expected[i].Attributes[AttrClosedCaptions] = pr.cc
			}
			if p.cond.passthrough {
				p.expected[i].Attributes[AttrToneMap] = p.toneMapDecision(pr)
			}
		}
	}
	if p.perTitle != nil {
		p.perTitle.annotate(p.expected)
	}
	if len(p.expected) == 0 && p.wholeInput {
		// Nothing to encode once (no audio, no images): Run does nothing.
		return Command{OutDir: outDir, Packaging: p.spec.Packaging, nothing: true}, nil
	}

	args := []string{
		"-nostdin", "-hide_banner", "-y", "-loglevel", "warning", "-nostats", "-progress", "pipe:1",
	}
	if p.inputURL == "" {
		args = append(args, inputOptions(in.Container)...)
		args = append(args, p.chunkInputArgs()...)
		args = append(args, "-i", "file:"+input)
	} else {
		args = append(args, remoteInputOptions(in.Container, p.inputURL)...)
		args = append(args, p.chunkInputArgs()...)
		args = append(args, "-i", p.inputURL)
	}
	args = append(args, p.inputs...)
	args = append(args, "-filter_complex", strings.Join(p.chains, ";"))
	cmd := Command{
		Args:            append(args, p.args...),
		OutDir:          outDir,
		Dirs:            p.dirs,
		ExpectedOutputs: p.expected,
		Encoders:        p.used,
		Packaging:       p.spec.Packaging,
	}
	if p.sbLabel != "" {
		cmd.Storyboard = &p.sbLayout
	}
	return cmd, nil
}

// PlanOption changes what Plan plans (WithCaptions, WithPerTitle).
type PlanOption func(*planner)

// WithCaptions adds the job's caption files as ConvertCaptions returned
// them (checked WebVTT); Plan refuses any other.
func WithCaptions(captions ...Caption) PlanOption {
	return func(p *planner) { p.captions = append(p.captions, captions...) }
}

// planner accumulates the pieces of one command.
type planner struct {
	spec encodespec.Spec // fitted to the source
	in   MediaInfo       // its FrameRate is the conditioned rate
	cond conditioning
	// sourceFPS is the input's frame rate before conditioning.
	sourceFPS float64
	captions  []Caption // the job's converted caption files
	inputs    []string  // FFmpeg arguments of the inputs after the first
	perTitle  *PerTitle // nil unless WithPerTitle
	// chunk is the range a chunk task encodes (WithChunk); wholeInput
	// plans a chunked encode's audio and images (WithWholeInput).
	chunk      *Chunk
	wholeInput bool
	// chunkStart and chunkEnd are the chunk's Start and End moved onto
	// the frame grid (alignChunk).
	chunkStart, chunkEnd float64
	// videoStreams is, for the whole-input part, how many video streams
	// the whole encode has: its audio streams are numbered after them.
	videoStreams int
	inputURL     string // WithPresignedInput; "" reads the local file

	renditions []plannedRendition
	keptAudio  []AudioStream  // the input's audio streams the spec keeps
	audios     []plannedAudio // the audio renditions, each encoded once and shared
	thumbs     string         // filter label of interval thumbnails
	poster     string         // filter label of the poster frame
	sbLabel    string         // filter label of the storyboard sheets
	sbLayout   encodespec.StoryboardLayout

	chains   []string
	args     []string
	dirs     []string
	expected []Output
	used     []EncoderChoice
}

type plannedRendition struct {
	r             encodespec.Rendition
	label         string // filter output label
	width, height int
	encoder       EncoderChoice
	gop           int
	cc            string     // the closed-caption decision (AttrClosedCaptions); "" when the input has none
	hdr           *MediaInfo // the input whose HDR the rendition keeps (tone_map passthrough); nil when SDR
	// cappedCRF, when positive, is x264's or x265's CRF, with
	// r.BitrateKbps as the cap (per-title ladders, chunked specs).
	cappedCRF float64
}

// encoder returns the choice for codec and records it as used.
func (p *planner) encoder(codec string, encoders []EncoderChoice) (EncoderChoice, error) {
	for _, e := range p.used {
		if e.Codec == codec {
			return e, nil
		}
	}
	for _, e := range encoders {
		if e.Codec == codec {
			p.used = append(p.used, e)
			return e, nil
		}
	}
	return EncoderChoice{}, fmt.Errorf("plan encode: no encoder chosen for codec %s", codec)
}

// keyframeSeconds is the keyframe interval: the segment duration for HLS
// and DASH.
func (p *planner) keyframeSeconds() float64 {
	if p.spec.SegmentSeconds > 0 {
		return p.spec.SegmentSeconds
	}
	return mp4KeyframeSeconds
}

// graph writes the filter graph: one split of the decoded video into a
// branch per rendition, thumbnail, poster and storyboard, and the audio
// chain.
func (p *planner) graph() {
	var branches, hdrBranches []string
	for i, r := range p.spec.Renditions {
		e, _ := p.encoder(r.Codec, nil)
		w, h := r.OutputSize(p.in.Width, p.in.Height)
		fps := p.in.FrameRate
		capFPS := r.MaxFPS > 0 && (fps <= 0 || r.MaxFPS < fps)
		if capFPS {
			fps = r.MaxFPS
		}
		if fps <= 0 {
			fps = defaultFrameRate
		}
		pr := plannedRendition{
			r: r, label: fmt.Sprintf("v%d", i), width: w, height: h, encoder: e,
			gop: max(1, int(math.Ceil(p.keyframeSeconds()*fps-1e-6))),
		}
		if rung, ok := p.perTitle.rung(r.Name); ok && rung.CRF > 0 && r.CRF == nil {
			if e.Encoder == "libx264" {
				pr.cappedCRF = rung.CRF
			} else {
				pr.r.BitrateKbps = rung.Kbps
			}
		}
		if c := p.spec.Chunking; c != nil && r.CRF == nil && (e.Encoder == "libx264" || e.Encoder == "libx265") {
			// Chunked specs: the same quality in every chunk (and in a
			// short input's one-pod encode), the bitrate as the cap.
			pr.cappedCRF = float64(c.QualityCRF())
		}
		chain := ""
		if p.in.ClosedCaptions {
			var drop bool
			pr.cc, drop = p.closedCaptions(pr, capFPS)
			if drop {
				chain = "sidedata=mode=delete:type=A53_CC,"
			}
		}
		if p.hdrKept(r) {
			pr.hdr = &p.in
		}
		p.renditions = append(p.renditions, pr)
		if capFPS {
			chain += "fps=fps=" + formatFloat(r.MaxFPS) + ","
		}
		if pr.hdr != nil {
			chain += fmt.Sprintf("scale=w=%d:h=%d:flags=bicubic,%s,format=%s", w, h, p.setSAR(w, h), hdrPixelFormat(e))
			hdrBranches = append(hdrBranches, chain+"["+pr.label+"]")
			continue
		}
		chain += fmt.Sprintf("scale=w=%d:h=%d:flags=bicubic,%s,format=%s", w, h, p.setSAR(w, h), pixelFormat(e, r))
		branches = append(branches, chain+"["+pr.label+"]")
	}
	if t := p.spec.Thumbnails; t != nil {
		w, h := p.thumbnailSize()
		scale := fmt.Sprintf("scale=w=%d:h=%d:flags=bicubic,setsar=1", w, h)
		if t.IntervalSeconds > 0 {
			p.thumbs = "thumbs"
			// The first frame, then the first frame at least interval
			// after the previous pick.
			sel := fmt.Sprintf("select='isnan(prev_selected_t)+gte(t-prev_selected_t,%s)'", formatFloat(t.IntervalSeconds))
			branches = append(branches, sel+","+scale+"["+p.thumbs+"]")
		}
		if t.Poster {
			p.poster = "poster"
			// trim twice: drop frames before the poster time, then close
			// the branch after one frame so split stops feeding it.
			at := t.PosterTime(p.in.DurationSeconds)
			branches = append(branches, fmt.Sprintf("trim=start=%s,trim=end_frame=1,%s[%s]", formatFloat(at), scale, p.poster))
		}
	}
	if b := p.spec.Storyboard; b != nil {
		p.sbLabel = "storyboard"
		p.sbLayout = b.Layout(p.in.DurationSeconds, p.in.Width, p.in.Height)
		branches = append(branches, storyboardBranch(p.sbLayout)+"["+p.sbLabel+"]")
	}
	if len(branches)+len(hdrBranches) == 0 {
		// Nothing reads the video (a chunked encode's whole-input part
		// without images): no chain, so FFmpeg does not decode it.
		p.planAudio()
		return
	}
	src := "[0:V:0]"
	if p.cond.chain != "" {
		p.chains = append(p.chains, src+p.cond.chain+"[conditioned]")
		src = "[conditioned]"
	}
	sdrSrc := src
	if p.cond.passthrough && len(branches) > 0 {
		// HDR input kept in some renditions: the rest (and the images)
		// share one tone mapping.
		if len(hdrBranches) > 0 {
			p.chains = append(p.chains, src+"split=2[hdr][tosdr]")
			src, sdrSrc = "[hdr]", "[tosdr]"
		}
		p.chains = append(p.chains, sdrSrc+toneMapChain+"[sdr]")
		sdrSrc = "[sdr]"
	}
	p.fanOut(sdrSrc, "s", branches)
	p.fanOut(src, "h", hdrBranches)

	p.planAudio()
}

// fanOut feeds branches (filter chains ending in their output label) from
// src, through a split when there are several; prefix names the split's
// outputs.
func (p *planner) fanOut(src, prefix string, branches []string) {
	switch len(branches) {
	case 0:
	case 1:
		p.chains = append(p.chains, src+branches[0])
	default:
		split := fmt.Sprintf("%ssplit=%d", src, len(branches))
		for i := range branches {
			split += fmt.Sprintf("[%s%d]", prefix, i)
			branches[i] = fmt.Sprintf("[%s%d]", prefix, i) + branches[i]
		}
		p.chains = append(p.chains, split)
		p.chains = append(p.chains, branches...)
	}
}

// setSAR is the sample aspect ratio filter of a w x h rendition. Pixels
// are square, except for DASH: its muxer (rightly) requires every
// representation of an adaptation set to have the same display aspect
// ratio, which even rounding breaks (854x480 next to 640x360), so each
// DASH rendition gets the sample aspect ratio that makes its display
// aspect exactly the source's (640x360 of an 854x480 source: 1281:1280).
func (p *planner) setSAR(w, h int) string {
	if !p.spec.Packaging.DASH() {
		return "setsar=1"
	}
	num, den := int64(p.in.Width)*int64(h), int64(p.in.Height)*int64(w)
	g := gcd(num, den)
	num, den = num/g, den/g
	if num == den {
		return "setsar=1"
	}
	return fmt.Sprintf("setsar=sar=%d/%d:max=%d", num, den, max(num, den))
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// thumbnailSize is the thumbnails' and poster's size: the spec's width
// (already limited to the source by ForSource) and the height that keeps
// the aspect ratio, even.
func (p *planner) thumbnailSize() (int, int) {
	w := p.spec.Thumbnails.Width
	h := max(2, 2*int(math.Round(float64(w)*float64(p.in.Height)/float64(p.in.Width)/2)))
	return w, h
}

// mp4 writes one faststart MP4 per rendition. The tee muxer lets all of
// them share one audio encode: the streams are encoded once and each file
// selects its video stream plus the audio.
func (p *planner) mp4() {
	if p.wholeInput {
		p.mp4Audio()
		return
	}
	var slaves []string
	for i, pr := range p.renditions {
		p.args = append(p.args, "-map", "["+pr.label+"]")
		p.args = append(p.args, videoArgs(pr, fmt.Sprintf(":v:%d", i), p.keyframeSeconds())...)
		sel := strconv.Itoa(i)
		for k := range p.audios {
			sel += "," + strconv.Itoa(len(p.renditions)+k)
		}
		name := pr.r.Name + ".mp4"
		// Names are [a-z0-9_-] plus ".mp4", so nothing needs tee escaping.
		slaves = append(slaves, fmt.Sprintf(`[f=mp4:movflags=+faststart:select=\'%s\']%s`, sel, name))
		p.expected = append(p.expected, Output{
			Name: name, Kind: KindVideo, ContentType: ContentTypeMP4,
			Rendition: pr.r.Name, Width: pr.width, Height: pr.height, Codec: pr.r.Codec,
		})
	}
	for k, a := range p.audios {
		p.args = append(p.args, "-map", "["+a.label+"]")
		p.args = append(p.args, audioArgs(*p.spec.Audio, fmt.Sprintf(":a:%d", k))...)
		p.args = append(p.args, a.languageArgs(fmt.Sprintf(":s:a:%d", k))...)
	}
	p.args = append(p.args, "-flags", "+global_header", "-max_muxing_queue_size", muxingQueue,
		"-map_metadata", "-1", "-map_chapters", "-1", "-f", "tee", strings.Join(slaves, "|"))
}

// hls writes one HLS output per rendition and one for the shared audio,
// each with a single stream, so FFmpeg names every init segment init.mp4
// (its var_stream_map would number them). Run writes the master playlist.
func (p *planner) hls() {
	taken := make(map[string]bool, len(p.renditions))
	for _, pr := range p.renditions {
		taken[pr.r.Name] = true
		p.args = append(p.args, "-map", "["+pr.label+"]")
		p.args = append(p.args, videoArgs(pr, ":v:0", p.keyframeSeconds())...)
		p.hlsOutput(pr.r.Name)
		p.expected = append(p.expected,
			Output{Name: pr.r.Name + "/index.m3u8", Kind: KindPlaylist, ContentType: ContentTypeHLS,
				Rendition: pr.r.Name, Width: pr.width, Height: pr.height, Codec: pr.r.Codec},
			Output{Name: pr.r.Name + "/init.mp4", Kind: KindVideo, ContentType: ContentTypeMP4,
				Rendition: pr.r.Name, Width: pr.width, Height: pr.height, Codec: pr.r.Codec},
		)
	}
	for _, a := range p.audios {
		// A rendition may be called "audio" too; the audio rendition then
		// takes the first free "audio_N" (see planAudio).
		name := a.name(taken)
		taken[name] = true
		p.args = append(p.args, "-map", "["+a.label+"]")
		p.args = append(p.args, audioArgs(*p.spec.Audio, ":a:0")...)
		p.args = append(p.args, a.languageArgs(":s:a:0")...)
		p.hlsOutput(name)
		p.expected = append(p.expected,
			Output{Name: name + "/index.m3u8", Kind: KindPlaylist, ContentType: ContentTypeHLS,
				Rendition: name, Codec: p.spec.Audio.Codec},
			Output{Name: name + "/init.mp4", Kind: KindAudio, ContentType: ContentTypeAudioMP4,
				Rendition: name, Codec: p.spec.Audio.Codec, Attributes: a.attributes()},
		)
	}
	if p.chunk == nil && !p.wholeInput { // Stitch writes a chunked encode's
		p.expected = append(p.expected, Output{Name: masterPlaylist, Kind: KindPlaylist, ContentType: ContentTypeHLS})
	}
}

func (p *planner) hlsOutput(dir string) {
	p.dirs = append(p.dirs, dir)
	p.hlsMuxer("init.mp4", dir+"/seg_%05d.m4s", dir+"/index.m3u8", 0)
}

// hlsMuxer writes the last mapped stream with FFmpeg's HLS muxer as fMP4:
// init segment init (beside the playlist), media segments named by the
// pattern segments, the VOD media playlist playlist; base is the number
// of the whole encode's first segment (see partOutputArgs).
func (p *planner) hlsMuxer(init, segments, playlist string, base int) {
	p.args = append(p.args, p.partOutputArgs(base)...)
	p.args = append(p.args,
		"-max_muxing_queue_size", muxingQueue, "-map_metadata", "-1", "-map_chapters", "-1",
		"-f", "hls",
		"-hls_time", formatFloat(p.spec.SegmentSeconds),
		"-hls_playlist_type", "vod",
		"-hls_segment_type", "fmp4",
		"-hls_fmp4_init_filename", init,
		"-hls_segment_filename", segments,
		"-hls_flags", "independent_segments",
		playlist)
}

// dash writes one MPD with a video adaptation set of all renditions and an
// audio adaptation set. Segment names carry the stream index
// ($RepresentationID$). With hls (CMAF packaging) the muxer also writes an
// HLS media playlist per stream over the same segments, media_<index>.m3u8;
// Run rewrites them as VOD playlists and writes master.m3u8 (see
// finishCMAFPlaylists).
func (p *planner) dash(hls bool) {
	if p.chunk != nil || p.wholeInput {
		p.dashParts()
		return
	}
	track := func(i int, o Output) {
		p.expected = append(p.expected, o)
		if hls {
			pl := o
			pl.Name, pl.Kind, pl.ContentType = fmt.Sprintf("media_%d.m3u8", i), KindPlaylist, ContentTypeHLS
			p.expected = append(p.expected, pl)
		}
	}
	for i, pr := range p.renditions {
		p.args = append(p.args, "-map", "["+pr.label+"]")
		p.args = append(p.args, videoArgs(pr, fmt.Sprintf(":v:%d", i), p.keyframeSeconds())...)
		track(i, Output{
			Name: fmt.Sprintf("init_%d.m4s", i), Kind: KindVideo, ContentType: ContentTypeSegment,
			Rendition: pr.r.Name, Width: pr.width, Height: pr.height, Codec: pr.r.Codec,
		})
	}
	sets := "id=0,streams=v"
	taken := map[string]bool{}
	for k, a := range p.audios {
		p.args = append(p.args, "-map", "["+a.label+"]")
		p.args = append(p.args, audioArgs(*p.spec.Audio, fmt.Sprintf(":a:%d", k))...)
		if a.lang != "und" { // the MPD's lang is BCP 47 ("en", not "eng")
			p.args = append(p.args, fmt.Sprintf("-metadata:s:a:%d", k), "language="+a.lang)
		}
		i := len(p.renditions) + k
		sets += fmt.Sprintf(" id=%d,streams=%d", k+1, i) // a set per language, as DASH wants
		name := a.name(taken)
		taken[name] = true
		track(i, Output{
			Name: fmt.Sprintf("init_%d.m4s", i), Kind: KindAudio, ContentType: ContentTypeSegment,
			Rendition: name, Codec: p.spec.Audio.Codec, Attributes: a.attributes(),
		})
	}
	p.args = append(p.args,
		"-max_muxing_queue_size", muxingQueue, "-map_metadata", "-1", "-map_chapters", "-1",
		"-f", "dash",
		"-dash_segment_type", "mp4", // CMAF for every codec; the default picks WebM for VP9 and Opus
		"-seg_duration", formatFloat(p.spec.SegmentSeconds),
		"-use_template", "1", "-use_timeline", "1",
		"-init_seg_name", "init_$RepresentationID$.$ext$",
		"-media_seg_name", "seg_$RepresentationID$_$Number%05d$.$ext$",
		"-adaptation_sets", sets)
	if hls {
		p.args = append(p.args, "-hls_playlist", "1", "-hls_master_name", masterPlaylist)
		p.expected = append(p.expected, Output{Name: masterPlaylist, Kind: KindPlaylist, ContentType: ContentTypeHLS})
	}
	p.args = append(p.args, dashManifest)
	p.expected = append(p.expected, Output{Name: dashManifest, Kind: KindManifest, ContentType: ContentTypeDASH})
}

// images writes the interval thumbnails and the poster as JPEG outputs of
// the same process.
func (p *planner) images() {
	if p.spec.Thumbnails == nil {
		return
	}
	w, h := p.thumbnailSize()
	if p.thumbs != "" {
		p.dirs = append(p.dirs, thumbsDir)
		p.args = append(p.args, "-map", "["+p.thumbs+"]", "-c:v", "mjpeg", "-q:v", "3", "-fps_mode", "vfr",
			"-map_metadata", "-1", "-f", "image2", thumbsDir+"/thumb_%05d.jpg")
	}
	if p.poster != "" {
		p.args = append(p.args, "-map", "["+p.poster+"]", "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "2",
			"-update", "1", "-map_metadata", "-1", "-f", "image2", posterName)
		p.expected = append(p.expected, Output{Name: posterName, Kind: KindPoster, ContentType: ContentTypeJPEG, Width: w, Height: h})
	}
}

// channelLayout names FFmpeg's layout for a validated channel count.
func channelLayout(channels int) string {
	switch channels {
	case 1:
		return "mono"
	case 6:
		return "5.1"
	default:
		return "stereo"
	}
}

// formatFloat prints a validated number the way FFmpeg parses it.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
