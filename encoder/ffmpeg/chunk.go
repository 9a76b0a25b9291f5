package ffmpeg

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	neturl "net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// Chunk is one range of the input that a chunk task encodes: every video
// rendition of that range and nothing else, its media segments numbered
// as in the encode of the whole input, so chunk outputs land on the final
// names and Stitch only has to write the playlists.
type Chunk struct {
	// Index is the chunk's position, from 0.
	Index int
	// Start and End are seconds from the input's start. Start is a
	// multiple of the segment duration; so is End, except for the last
	// chunk, whose End is the input's duration.
	Start, End float64
	// FirstSegment is the number of the chunk's first media segment
	// (seg_NNNNN.m4s, numbered from 0 in the whole encode): Start divided
	// by the segment duration (by ChunkGrid: MP4 outputs have no
	// segments, the number counts keyframe intervals).
	FirstSegment int
}

// Seconds is the chunk's length.
func (c Chunk) Seconds() float64 { return c.End - c.Start }

// Chunkable reports why a spec cannot be encoded in chunks, "" when it
// can. HLS, DASH and CMAF chunks are stitched by writing the playlists
// and the MPD over their segments, MP4 chunks joined by a lossless
// concat; encryption happens on the whole output and is not chunked yet.
func Chunkable(spec encodespec.Spec) string {
	switch {
	case spec.Encryption != nil:
		return "chunked encoding does not encrypt yet"
	case spec.Packaging.Segmented() && spec.SegmentSeconds <= 0:
		return "chunked encoding needs a segment duration"
	}
	return ""
}

// ChunkGrid is the interval chunk boundaries are multiples of: the
// segment duration for HLS, the keyframe interval of MP4 outputs.
func ChunkGrid(spec encodespec.Spec) float64 {
	if spec.Packaging == encodespec.PackagingMP4 {
		return mp4KeyframeSeconds
	}
	return spec.SegmentSeconds
}

// MaxChunks bounds the chunks of one input: a ten-hour programme in
// 10 s chunks.
const MaxChunks = 3600

// keyframeSlackFraction is how far, as a fraction of a chunk, a chunk
// boundary may move from where the chunk length puts it to meet one of
// the input's keyframes.
const keyframeSlackFraction = 0.25

// PlanChunks cuts an input of durationSeconds into chunks of about
// chunkSeconds each. Every boundary is a multiple of segmentSeconds, so
// each chunk writes the segments the whole encode would write there,
// numbered the same (within a chunk a cut can land one frame later at a
// fractional frame rate: docs/design/0028-chunked-encoding.md). Within a
// quarter of a chunk of where the length puts it, a boundary moves to the
// grid point nearest after one of the input's
// keyframes (keyframes are seconds from the input's start, as Keyframes
// returns them), so a chunk's decoder starts close to where its range
// does; with no keyframe list boundaries stay where the length puts them.
// The last chunk takes the rest of the input, at least half a chunk: a
// shorter remainder joins the chunk before it, so an input shorter than
// one chunk and a half is one chunk. More than MaxChunks chunks is an
// error (a hostile file can claim any duration its timestamps reach).
func PlanChunks(durationSeconds float64, keyframes []float64, segmentSeconds, chunkSeconds float64) ([]Chunk, error) {
	finite := func(v float64) bool { return v > 0 && !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case !finite(durationSeconds):
		return nil, fmt.Errorf("plan chunks: the input's duration %v is not a positive number", durationSeconds)
	case !finite(segmentSeconds):
		return nil, fmt.Errorf("plan chunks: the segment duration %v is not a positive number", segmentSeconds)
	case !finite(chunkSeconds):
		return nil, fmt.Errorf("plan chunks: the chunk length %v is not a positive number", chunkSeconds)
	case chunkSeconds < segmentSeconds:
		return nil, fmt.Errorf("plan chunks: chunks of %v s are shorter than a segment (%v s)", chunkSeconds, segmentSeconds)
	case durationSeconds/chunkSeconds > MaxChunks:
		return nil, fmt.Errorf("plan chunks: %v s in chunks of %v s would be more than %d chunks; use longer chunks", durationSeconds, chunkSeconds, MaxChunks)
	}
	perChunk := max(1, int(math.Round(chunkSeconds/segmentSeconds)))
	slack := int(float64(perChunk) * keyframeSlackFraction)
	keys := slices.Clone(keyframes)
	slices.Sort(keys)

	// The last grid point a boundary may take: half a chunk must follow it.
	last := int(math.Floor((durationSeconds-float64(perChunk)*segmentSeconds/2)/segmentSeconds + 1e-9))
	var bounds []int // segment numbers where chunks after the first start
	prev := 0
	for {
		want := prev + perChunk
		if want > last {
			break
		}
		best, bestGap := want, math.Inf(1)
		if len(keys) > 0 {
			for n := max(prev+1, want-slack); n <= min(last, want+slack); n++ {
				gap := decodeLead(keys, float64(n)*segmentSeconds)
				// Ties go to the grid point nearest the wanted length.
				if gap < bestGap-1e-9 || (math.Abs(gap-bestGap) <= 1e-9 && abs(n-want) < abs(best-want)) {
					best, bestGap = n, gap
				}
			}
		}
		bounds = append(bounds, best)
		prev = best
	}

	chunks := make([]Chunk, 0, len(bounds)+1)
	start := 0
	for i, b := range append(bounds, -1) {
		c := Chunk{Index: i, Start: float64(start) * segmentSeconds, FirstSegment: start, End: durationSeconds}
		if b >= 0 {
			c.End = float64(b) * segmentSeconds
			start = b
		}
		chunks = append(chunks, c)
	}
	return chunks, nil
}

// decodeLead is how long before t the last keyframe at or before t is:
// what a decoder seeking to t has to decode and throw away.
func decodeLead(keys []float64, t float64) float64 {
	// The first keyframe after t (a microsecond of slack for rounding);
	// the one before it is where decoding starts.
	i, _ := slices.BinarySearch(keys, t+1e-6)
	if i == 0 {
		return t
	}
	return max(0, t-keys[i-1])
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// Keyframes lists the times of the video stream's keyframes, in seconds
// from the input's start, from the packet index (no decoding). The input
// is opened as Probe opened it: the detected demuxer and the file protocol
// alone.
func Keyframes(ctx context.Context, ffprobe, file string, in MediaInfo) ([]float64, error) {
	if in.Container == "" || !containerAllowed(in.Container) {
		return nil, refusedContainer(in.Container)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("keyframes: %w", err)
	}
	args := append(inputOptions(in.Container), "-v", "error", "-select_streams", "v:0",
		"-show_entries", "format=start_time:packet=pts_time,dts_time,flags", "-of", "compact=p=1:nk=0",
		"-i", "file:"+abs)
	cmd := command(ctx, ffprobe, args...)
	var stdout bytes.Buffer
	stderr := newTailBuffer(5)
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("keyframes: %w", ctx.Err())
		}
		return nil, fmt.Errorf("keyframes: ffprobe: %w: %s", err, stderr.String())
	}
	var times []float64
	start, haveStart := 0.0, false
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		section, fields := compactLine(sc.Text())
		switch section {
		case "format":
			start, haveStart = parseSeconds(fields["start_time"])
		case "packet":
			if !strings.Contains(fields["flags"], "K") {
				continue
			}
			t, ok := parseSeconds(fields["pts_time"])
			if !ok {
				if t, ok = parseSeconds(fields["dts_time"]); !ok {
					continue
				}
			}
			times = append(times, t)
		}
	}
	if !haveStart {
		start = 0
	}
	for i := range times {
		times[i] -= start
	}
	slices.Sort(times)
	return slices.Compact(times), nil
}

// WithChunk plans the encode of one chunk: the input from c.Start to
// c.End (FFmpeg seeks on the input, decoding from the keyframe before
// c.Start), every video rendition with output timestamps that continue
// the whole input's (-output_ts_offset) and segments numbered from
// c.FirstSegment. Audio, subtitles, thumbnails, the poster and the
// storyboard belong to the whole-input part (WithWholeInput); the master
// playlist to Stitch. The spec must be Chunkable.
func WithChunk(c Chunk) PlanOption {
	return func(p *planner) { p.chunk = &c }
}

// WithWholeInput plans the part of a chunked encode that reads the whole
// input once: the audio renditions (so there is no seam in the audio),
// subtitles, thumbnails, the poster and the storyboard, and no video
// rendition. The spec must be Chunkable.
func WithWholeInput() PlanOption {
	return func(p *planner) { p.wholeInput = true }
}

// WithPresignedInput has FFmpeg read the input from url, a presigned GET
// of MpegFlow's own object storage or the encoder's loopback proxy of a
// customer's URL (never a customer's URL itself: FFmpeg does not pass the
// SSRF guard), instead of the local file: a chunk task then reads its range with HTTP range
// requests (the container's index, the keyframe before Start and what
// follows) rather than downloading the whole input. The protocols allowed
// widen from file to http, https, tls and tcp; the demuxer stays the one
// Probe detected. Plan refuses any other scheme, and a URL with user
// information.
func WithPresignedInput(url string) PlanOption {
	return func(p *planner) { p.inputURL = url }
}

// checkInputURL checks a WithPresignedInput URL.
// Its errors never quote the URL (a signature is in it).
func checkInputURL(raw string) error {
	u, err := neturl.Parse(raw)
	switch {
	case err != nil:
		return errors.New("plan encode: the input URL does not parse")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("plan encode: the input URL's scheme is not http or https")
	case u.Host == "" || u.User != nil:
		return errors.New("plan encode: the input URL needs a host and no user information")
	}
	return nil
}

// applyPart narrows the plan to a chunk or to the whole-input part.
func (p *planner) applyPart() error {
	if p.chunk == nil && !p.wholeInput {
		return nil
	}
	if p.chunk != nil && p.wholeInput {
		return errors.New("plan encode: a plan is either a chunk or the whole-input part")
	}
	if why := Chunkable(p.spec); why != "" {
		return fmt.Errorf("plan encode: %s", why)
	}
	if p.wholeInput {
		p.videoStreams = len(p.spec.Renditions)
		p.spec.Renditions = nil
		return nil
	}
	c := *p.chunk
	if c.Start < 0 || c.End <= c.Start || c.End > p.in.DurationSeconds+1e-6 || c.FirstSegment < 0 {
		return fmt.Errorf("plan encode: chunk %d (%v s to %v s) is outside the input's %v s", c.Index, c.Start, c.End, p.in.DurationSeconds)
	}
	if n := c.Start / ChunkGrid(p.spec); math.Abs(n-math.Round(n)) > 1e-6 || int(math.Round(n)) != c.FirstSegment {
		return fmt.Errorf("plan encode: chunk %d starts at %v s, which is not segment %d's start", c.Index, c.Start, c.FirstSegment)
	}
	p.spec.Audio, p.spec.Thumbnails, p.spec.Storyboard = nil, nil, nil
	p.captions, p.in.Subtitles = nil, nil
	return nil
}

// alignChunk finds where the chunk's frames start and end: the first
// frame at or after Start and at or after End on the frame grid the
// renditions are encoded on (the input's rate, or what conditioning made
// of it, and the grid of any rendition capped to a lower rate: the
// coarsest of them, so a boundary is a frame of every rendition; a 29.97
// fps cap of a 59.94 fps input moves it to every other input frame). A
// boundary that falls between frames (any whole second of a 29.97 fps
// input) would otherwise shift every frame of the chunk by the fraction
// of a frame FFmpeg rounds away when it rebases the chunk's timestamps to
// zero: the chunk seeks to, is cut at and is offset by the frame times
// themselves. Times are rounded down to FFmpeg's microseconds so the
// frame at a boundary is never the one dropped. A capped rendition whose
// grid the coarsest one does not land on (25 fps capped to 24 is fine on
// whole seconds; 29.97 capped to 25 never is) is refused.
func (p *planner) alignChunk() error {
	if p.chunk == nil {
		return nil
	}
	rates := []float64{p.cond.fps}
	if p.cond.fps <= 0 {
		return fmt.Errorf("plan encode: chunk %d: the input's frame rate is unknown; it cannot be cut on frames", p.chunk.Index)
	}
	for _, r := range p.spec.Renditions {
		if r.MaxFPS > 0 && r.MaxFPS < p.cond.fps {
			rates = append(rates, r.MaxFPS)
		}
	}
	grid := slices.Min(rates)
	onGrid := func(t float64) float64 {
		n := math.Ceil(t*grid - 1e-6)
		return math.Floor(n/grid*1e6) / 1e6
	}
	p.chunkStart, p.chunkEnd = onGrid(p.chunk.Start), onGrid(p.chunk.End)
	for _, r := range rates {
		if n := p.chunkStart * r; math.Abs(n-math.Round(n)) > 1e-3 {
			return fmt.Errorf("plan encode: chunk %d starts at %v s, between two frames at %v fps", p.chunk.Index, p.chunkStart, r)
		}
	}
	return nil
}

// chunkInputArgs seek the input to the chunk's range; they go before -i.
func (p *planner) chunkInputArgs() []string {
	if p.chunk == nil {
		return nil
	}
	var args []string
	if p.chunkStart > 0 {
		args = append(args, "-ss", formatFloat(p.chunkStart))
	}
	if p.chunk.End < p.in.DurationSeconds-1e-6 {
		args = append(args, "-t", formatFloat(math.Round((p.chunkEnd-p.chunkStart)*1e6)/1e6))
	}
	return args
}

// partOutputArgs number a part's segments and place a chunk's output on
// the whole input's timeline; base is the number the whole encode's first
// segment gets (0 for HLS, 1 for the DASH layout). The offset alone is
// not enough: the MP4 muxer would start the fragments' decode times
// (tfdt) at zero and put the offset in the init segment's edit list,
// which a player reading the first chunk's init segment never sees.
// frag_discont makes it write the offset into the fragments themselves,
// so the segments of all chunks form one timeline under any chunk's init
// segment. The first chunk is the start of the whole encode and is muxed
// exactly as it would be (its first decode time is zero, the B-frame
// delay in the edit list); frag_discont starts each later chunk's decode
// times at its start with the same composition offsets, so its first
// sample follows the first chunk's convention.
func (p *planner) partOutputArgs(base int) []string {
	var args []string
	switch {
	case p.wholeInput && base != 0:
		args = append(args, "-start_number", strconv.Itoa(base))
	case p.chunk != nil:
		if n := p.chunk.FirstSegment + base; n != 0 {
			args = append(args, "-start_number", strconv.Itoa(n))
		}
		if p.chunk.Start > 0 {
			args = append(args, "-output_ts_offset", formatFloat(p.chunkStart), "-hls_segment_options", "movflags=+frag_discont")
		}
	}
	return args
}

// dashParts plans a chunk or the whole-input part of a DASH or CMAF
// encode. FFmpeg 5.1's DASH muxer cannot number segments from a given
// number, so each stream is muxed on its own by the HLS muxer into the
// DASH layout's names (init_<i>.m4s, seg_<i>_NNNNN.m4s numbered from 1 as
// the DASH muxer numbers them, i the stream's index in the whole encode)
// with a media playlist, media_<i>.m3u8, that Stitch reads; Stitch
// writes the MPD (and for CMAF the HLS playlists).
func (p *planner) dashParts() {
	out := func(i int) {
		p.hlsMuxer(fmt.Sprintf("init_%d.m4s", i), fmt.Sprintf("seg_%d_%%05d.m4s", i), fmt.Sprintf("media_%d.m3u8", i), 1)
	}
	playlist := func(i int, init Output) Output {
		init.Name, init.Kind, init.ContentType, init.Attributes = fmt.Sprintf("media_%d.m3u8", i), KindPlaylist, ContentTypeHLS, nil
		return init
	}
	for i, pr := range p.renditions {
		p.args = append(p.args, "-map", "["+pr.label+"]")
		p.args = append(p.args, videoArgs(pr, ":v:0", p.keyframeSeconds())...)
		out(i)
		init := Output{Name: fmt.Sprintf("init_%d.m4s", i), Kind: KindVideo, ContentType: ContentTypeSegment,
			Rendition: pr.r.Name, Width: pr.width, Height: pr.height, Codec: pr.r.Codec}
		p.expected = append(p.expected, init, playlist(i, init))
	}
	taken := map[string]bool{}
	for k, a := range p.audios {
		i := p.videoStreams + k
		p.args = append(p.args, "-map", "["+a.label+"]")
		p.args = append(p.args, audioArgs(*p.spec.Audio, ":a:0")...)
		p.args = append(p.args, a.languageArgs(":s:a:0")...)
		out(i)
		name := a.name(taken)
		taken[name] = true
		init := Output{Name: fmt.Sprintf("init_%d.m4s", i), Kind: KindAudio, ContentType: ContentTypeSegment,
			Rendition: name, Codec: p.spec.Audio.Codec, Attributes: a.attributes()}
		p.expected = append(p.expected, init, playlist(i, init))
	}
}

// chunkAudio is the whole-input part's audio of an MP4 chunked encode: an
// intermediate file Stitch muxes into every rendition's MP4 and does not
// keep. Its extension keeps it apart from any rendition's "<name>.mp4".
const chunkAudio = "audio.m4a"

// mp4Audio writes the whole-input part of an MP4 chunked encode: every
// audio rendition in one MP4 file, chunkAudio.
func (p *planner) mp4Audio() {
	if len(p.audios) == 0 {
		return
	}
	for k, a := range p.audios {
		p.args = append(p.args, "-map", "["+a.label+"]")
		p.args = append(p.args, audioArgs(*p.spec.Audio, fmt.Sprintf(":a:%d", k))...)
		p.args = append(p.args, a.languageArgs(fmt.Sprintf(":s:a:%d", k))...)
	}
	p.args = append(p.args, "-max_muxing_queue_size", muxingQueue, "-map_metadata", "-1", "-map_chapters", "-1", "-f", "mp4", chunkAudio)
	p.expected = append(p.expected, Output{Name: chunkAudio, Kind: KindAudio, ContentType: ContentTypeAudioMP4,
		Rendition: "audio", Codec: p.spec.Audio.Codec})
}
