package ffmpeg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/Eyevinn/mp4ff/mp4"
)

// Stitch joins a chunked encode into outDir: the chunk parts (parts[i]
// planned WithChunk(chunks[i]), run and verified in its own directory)
// and the whole-input part (planned WithWholeInput). Nothing is encoded.
//
// For HLS nothing is re-muxed either: every chunk's media segments already
// carry their final names and the whole input's timestamps, so Stitch
// checks that they follow each other (each chunk's segments are numbered
// on from the last chunk's, and every chunk's init segment describes the
// same stream as the first's), moves them and the whole-input part's
// files into outDir, writes each rendition's media playlist over all its
// segments, with the first chunk's init segment, and the master playlist
// with BANDWIDTH measured over the whole rendition.
//
// For MP4 each rendition's chunk files are joined by FFmpeg's concat
// demuxer with stream copy, the whole-input part's audio muxed in, into
// one faststart MP4.
//
// A part whose media segments were uploaded to their final keys instead
// of kept (a chunk task's) carries their facts in its Remote ledger; the
// stitched command's Remote lists them all, and nothing reads them.
//
// It returns the command that describes the stitched output, for Collect,
// Verify and (segmented packagings) CheckSeams. outDir must be empty or
// absent; on error its contents are not an output. Every segmented
// rendition is checked before any segment moves, so a refusal leaves the
// parts as they were.
func Stitch(ctx context.Context, ffmpegBin, outDir string, in MediaInfo, chunks []Chunk, parts []Command, whole Command) (Command, error) {
	if len(chunks) == 0 || len(chunks) != len(parts) {
		return Command{}, fmt.Errorf("stitch: %d chunks and %d chunk parts", len(chunks), len(parts))
	}
	if err := checkCover(chunks, in.DurationSeconds); err != nil {
		return Command{}, fmt.Errorf("stitch: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Command{}, fmt.Errorf("stitch: %w", err)
	}
	packaging := parts[0].Packaging
	cmd := Command{OutDir: outDir, Encoders: parts[0].Encoders, Storyboard: whole.Storyboard, Packaging: packaging}
	// The DASH layout's media playlists are the chunks' working files;
	// CMAF keeps them (rewritten over the whole rendition) as its HLS
	// playlists.
	keep := func(o Output) bool {
		return o.Name != chunkAudio && (!packaging.DASH() || o.Kind != KindPlaylist || !strings.HasPrefix(o.Name, "media_") || packaging.HLS())
	}
	// Every segmented rendition is checked before any file moves, so a
	// refusal leaves the parts as they were.
	var joins []renditionJoin
	for _, o := range parts[0].ExpectedOutputs {
		if playlist, ok := mediaPlaylistOf(o); ok && o.Kind == KindVideo {
			j, err := checkRendition(outDir, o.Name, playlist, chunks, parts)
			if err != nil {
				return Command{}, fmt.Errorf("stitch rendition %s: %w", o.Rendition, err)
			}
			joins = append(joins, j)
		}
	}
	for _, j := range joins {
		if err := j.apply(outDir); err != nil {
			return Command{}, err
		}
		for name, f := range j.remote {
			cmd.Remote = withFacts(cmd.Remote, name, f)
		}
	}
	wholeRemote, err := remoteSegments(whole)
	if err != nil {
		return Command{}, fmt.Errorf("stitch: the whole-input part: %w", err)
	}
	for name, f := range wholeRemote {
		cmd.Remote = withFacts(cmd.Remote, name, f)
	}
	for _, o := range parts[0].ExpectedOutputs {
		if _, segmented := mediaPlaylistOf(o); o.Kind == KindVideo && !segmented {
			if err := joinMP4(ctx, ffmpegBin, outDir, o.Name, parts, whole); err != nil {
				return Command{}, fmt.Errorf("stitch rendition %s: %w", o.Rendition, err)
			}
		}
		if keep(o) {
			cmd.ExpectedOutputs = append(cmd.ExpectedOutputs, o)
		}
	}
	if err := os.RemoveAll(filepath.Join(whole.OutDir, chunkAudio)); err != nil {
		return Command{}, fmt.Errorf("stitch: %w", err)
	}
	if err := moveTree(whole.OutDir, outDir); err != nil {
		return Command{}, fmt.Errorf("stitch: %w", err)
	}
	for _, o := range whole.ExpectedOutputs {
		if keep(o) {
			cmd.ExpectedOutputs = append(cmd.ExpectedOutputs, o)
		}
	}
	if packaging.DASH() {
		if err := writeStitchedMPD(cmd, in); err != nil {
			return Command{}, fmt.Errorf("stitch: %w", err)
		}
		cmd.ExpectedOutputs = append(cmd.ExpectedOutputs, Output{Name: dashManifest, Kind: KindManifest, ContentType: ContentTypeDASH})
		if packaging.HLS() {
			if err := finishCMAFPlaylists(cmd); err != nil {
				return Command{}, fmt.Errorf("stitch: %w", err)
			}
		} else if err := removeMediaPlaylists(outDir); err != nil {
			return Command{}, fmt.Errorf("stitch: %w", err)
		}
	}
	if packaging.HLS() {
		cmd.ExpectedOutputs = append(cmd.ExpectedOutputs, Output{Name: masterPlaylist, Kind: KindPlaylist, ContentType: ContentTypeHLS})
		if err := writeMaster(cmd); err != nil {
			return Command{}, fmt.Errorf("stitch: %w", err)
		}
	}
	if err := finishSubtitles(cmd, in.DurationSeconds); err != nil {
		return Command{}, fmt.Errorf("stitch: %w", err)
	}
	if err := declareClosedCaptions(cmd); err != nil {
		return Command{}, fmt.Errorf("stitch: %w", err)
	}
	return cmd, nil
}

// withFacts adds a segment's facts to l, made when nil.
func withFacts(l Ledger, name string, f SegmentFacts) Ledger {
	if l == nil {
		l = Ledger{}
	}
	l[name] = f
	return l
}

// checkCover checks that chunks, in order, cover the input from its start
// to its end with neither gap nor overlap.
func checkCover(chunks []Chunk, duration float64) error {
	at := 0.0
	for _, c := range chunks {
		if math.Abs(c.Start-at) > 1e-6 || c.End <= c.Start {
			return fmt.Errorf("chunk %d runs from %v s to %v s, but the chunks before it end at %v s", c.Index, c.Start, c.End, at)
		}
		at = c.End
	}
	if math.Abs(at-duration) > 1e-6 {
		return fmt.Errorf("the chunks end at %v s, the input at %v s", at, duration)
	}
	return nil
}

// removeMediaPlaylists deletes the DASH layout's working playlists,
// media_<i>.m3u8, at the top of outDir.
func removeMediaPlaylists(outDir string) error {
	names, err := filepath.Glob(filepath.Join(outDir, "media_*.m3u8"))
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := os.Remove(n); err != nil {
			return err
		}
	}
	return nil
}

// joinMP4 joins one rendition's chunk MP4 files, in order, with stream
// copy and adds the whole-input part's audio (when it has any).
func joinMP4(ctx context.Context, ffmpegBin, outDir, name string, parts []Command, whole Command) error {
	var list strings.Builder
	list.WriteString("ffconcat version 1.0\n")
	for _, part := range parts {
		abs, err := filepath.Abs(filepath.Join(part.OutDir, filepath.FromSlash(name)))
		if err != nil {
			return err
		}
		// Single-quoted, with quotes escaped as the concat demuxer reads them.
		fmt.Fprintf(&list, "file '%s'\n", strings.ReplaceAll(abs, "'", `'\''`))
	}
	listFile := filepath.Join(outDir, name+".concat")
	if err := os.WriteFile(listFile, []byte(list.String()), 0o600); err != nil {
		return err
	}
	defer os.Remove(listFile) //nolint:errcheck // a leftover list is removed with outDir
	args := []string{"-nostdin", "-hide_banner", "-y", "-loglevel", "error",
		"-f", "concat", "-safe", "0", "-format_whitelist", "concat,mov", "-protocol_whitelist", "file",
		"-i", "file:" + listFile}
	maps := []string{"-map", "0:v:0"}
	if whole.expects(chunkAudio) {
		audio, err := filepath.Abs(filepath.Join(whole.OutDir, chunkAudio))
		if err != nil {
			return err
		}
		args = append(args, inputOptions("mov")...)
		args = append(args, "-i", "file:"+audio)
		maps = append(maps, "-map", "1:a")
	}
	args = append(args, maps...)
	args = append(args, "-c", "copy", "-movflags", "+faststart", "-map_metadata", "-1", "-map_chapters", "-1",
		"-f", "mp4", "file:"+filepath.Join(outDir, filepath.FromSlash(name)))
	out, err := command(ctx, ffmpegBin, args...).CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("join: %w", ctx.Err())
		}
		return fmt.Errorf("join with ffmpeg (%w): %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// renditionJoin is what stitching one segmented rendition does, found
// and checked before anything moves.
type renditionJoin struct {
	initName, playlist string
	init               []byte      // the first chunk's init segment
	all                hlsPlaylist // every chunk's segments, in order
	moves              [][2]string // segment files: from (a part's), to (outDir's)
	remote             Ledger      // segments already at their final keys
}

// checkRendition reads one rendition's playlist and init segment from
// every chunk and checks that they join: each chunk's segments numbered on
// from the last chunk's, every init segment describing the same stream as
// the first's.
func checkRendition(outDir, initName, playlist string, chunks []Chunk, parts []Command) (renditionJoin, error) {
	j := renditionJoin{initName: initName, playlist: playlist, remote: Ledger{}}
	dir := path.Dir(initName)
	name, err := segmentNamer(initName)
	if err != nil {
		return j, err
	}
	var first []byte
	for i, part := range parts {
		c := chunks[i]
		_, pl, err := readPlaylist(part.OutDir, playlist)
		if err != nil {
			return j, fmt.Errorf("chunk %d: %w", c.Index, err)
		}
		if pl.mapURI != path.Base(initName) || len(pl.segments) == 0 {
			return j, fmt.Errorf("chunk %d: its playlist has init segment %q and %d segments", c.Index, pl.mapURI, len(pl.segments))
		}
		init, err := os.ReadFile(filepath.Join(part.OutDir, filepath.FromSlash(initName)))
		if err != nil {
			return j, fmt.Errorf("chunk %d: %w", c.Index, err)
		}
		desc, ok := findBox(init, "stsd")
		switch {
		case !ok:
			return j, fmt.Errorf("chunk %d: %s has no sample description", c.Index, initName)
		case i == 0:
			first, j.init = desc, init
		case !bytes.Equal(desc, first):
			return j, fmt.Errorf("chunk %d: its stream's sample description differs from chunk 0's (the encoder's settings changed between chunks)", c.Index)
		}
		for k, s := range pl.segments {
			if want := name(c.FirstSegment + k); s.uri != want {
				return j, fmt.Errorf("chunk %d: segment %d is %q, want %q", c.Index, k, s.uri, want)
			}
			from := filepath.Join(part.OutDir, filepath.FromSlash(dir), s.uri)
			if _, err := os.Lstat(from); errors.Is(err, fs.ErrNotExist) {
				// Already at its final key: the part's ledger says what it is.
				f, ok := part.Remote[path.Join(dir, s.uri)]
				if !ok {
					return j, fmt.Errorf("chunk %d: segment %s is neither in the part nor in its ledger", c.Index, path.Join(dir, s.uri))
				}
				j.remote[path.Join(dir, s.uri)] = f
				continue
			}
			j.moves = append(j.moves, [2]string{from, filepath.Join(outDir, filepath.FromSlash(dir), s.uri)})
		}
		if i+1 < len(chunks) && c.FirstSegment+len(pl.segments) != chunks[i+1].FirstSegment {
			return j, fmt.Errorf("chunk %d wrote segments %d to %d, but chunk %d starts at segment %d",
				c.Index, c.FirstSegment, c.FirstSegment+len(pl.segments)-1, chunks[i+1].Index, chunks[i+1].FirstSegment)
		}
		j.all.segments = append(j.all.segments, pl.segments...)
	}
	j.all.mapURI = path.Base(initName)
	return j, nil
}

// apply moves the rendition's segments into outDir (a rename: the parts
// and outDir are on one file system) and writes its init segment and
// media playlist.
func (j renditionJoin) apply(outDir string) error {
	if err := os.MkdirAll(filepath.Join(outDir, filepath.FromSlash(path.Dir(j.initName))), 0o755); err != nil {
		return fmt.Errorf("stitch: %w", err)
	}
	if err := os.WriteFile(filepath.Join(outDir, filepath.FromSlash(j.initName)), j.init, 0o644); err != nil {
		return fmt.Errorf("stitch: %w", err)
	}
	for _, m := range j.moves {
		if err := os.Rename(m[0], m[1]); err != nil {
			return fmt.Errorf("stitch: %w", err)
		}
	}
	if err := writeAtomically(filepath.Join(outDir, filepath.FromSlash(j.playlist)), vodPlaylist(j.all, playlistKeys{})); err != nil {
		return fmt.Errorf("stitch: %w", err)
	}
	return nil
}

// segmentName is an HLS media segment's name as the planner numbers them.
func segmentName(n int) string { return fmt.Sprintf("seg_%05d.m4s", n) }

// segmentNamer names the media segments of an init segment by the
// chunk's numbering (segment n of the whole encode, from 0): HLS's
// "seg_NNNNN.m4s" beside "init.mp4" numbers from 0, the DASH layout's
// "seg_<i>_NNNNN.m4s" of "init_<i>.m4s" from 1, as the DASH muxer does.
func segmentNamer(initName string) (func(int) string, error) {
	base := path.Base(initName)
	if base == "init.mp4" {
		return segmentName, nil
	}
	if i, ok := strings.CutPrefix(base, "init_"); ok {
		if i, ok = strings.CutSuffix(i, ".m4s"); ok {
			return func(n int) string { return fmt.Sprintf("seg_%s_%05d.m4s", i, n+1) }, nil
		}
	}
	return nil, fmt.Errorf("%s is not an init segment", initName)
}

// moveTree moves every file under from into the same place under to; a
// missing from holds nothing to move.
func moveTree(from, to string) error {
	if _, err := os.Stat(from); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if _, err := os.Lstat(dst); err == nil {
			return fmt.Errorf("%s exists in two parts", filepath.ToSlash(rel))
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.Rename(p, dst)
	})
}

// CheckSeams checks what Verify cannot see in a stitched output, from the
// segments' own boxes: in every video rendition each segment starts with
// a keyframe and decodes on from where the one before ended (its first
// decode time is the previous segment's last plus that sample's duration:
// no gap, no overlap, no reset at a chunk boundary); every rendition
// starts each segment at the same instant, within half a frame, so a
// player can switch between them at any segment; and the rendition lasts
// the input's duration within one frame.
func CheckSeams(cmd Command, in MediaInfo) error {
	tracks, err := videoTracks(cmd)
	if err != nil {
		return fmt.Errorf("check seams: %w", err)
	}
	var errs []error
	var reference []float64 // segment start times of the first rendition
	var refName string
	for _, t := range tracks {
		starts, frame, total, err := segmentTimes(cmd.OutDir, t.init.Name, t.segments, cmd.Remote)
		if err != nil {
			errs = append(errs, fmt.Errorf("rendition %s: %w", t.init.Rendition, err))
			continue
		}
		if math.Abs(total-in.DurationSeconds) > frame+1e-6 {
			errs = append(errs, fmt.Errorf("rendition %s lasts %.4f s, the input %.4f s (more than a frame apart)", t.init.Rendition, total, in.DurationSeconds))
		}
		if reference == nil {
			reference, refName = starts, t.init.Rendition
			continue
		}
		if len(starts) != len(reference) {
			errs = append(errs, fmt.Errorf("rendition %s has %d segments, %s %d", t.init.Rendition, len(starts), refName, len(reference)))
			continue
		}
		for i := range starts {
			if math.Abs(starts[i]-reference[i]) > frame/2 {
				errs = append(errs, fmt.Errorf("segment %d starts at %.4f s in rendition %s and at %.4f s in %s", i, starts[i], t.init.Rendition, reference[i], refName))
				break
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("check seams: %w", errors.Join(errs...))
	}
	return nil
}

// segmentedTrack is a video rendition's init segment and media segments.
type segmentedTrack struct {
	init     Output
	segments []string
}

// videoTracks lists the segmented video renditions of an output with
// their segments in order: from each HLS media playlist, or from the MPD
// when there are no HLS playlists (DASH).
func videoTracks(cmd Command) ([]segmentedTrack, error) {
	var fromMPD map[string][]string
	if cmd.expects(dashManifest) && !cmd.expects(masterPlaylist) {
		data, err := os.ReadFile(filepath.Join(cmd.OutDir, dashManifest))
		if err != nil {
			return nil, err
		}
		parsed, err := parseMPD(data)
		if err != nil {
			return nil, err
		}
		fromMPD = map[string][]string{}
		for _, t := range parsed {
			fromMPD[t.init] = t.segments
		}
	}
	var tracks []segmentedTrack
	for _, o := range cmd.ExpectedOutputs {
		if o.Kind != KindVideo {
			continue
		}
		if fromMPD != nil {
			if segs, ok := fromMPD[o.Name]; ok {
				tracks = append(tracks, segmentedTrack{init: o, segments: segs})
			}
			continue
		}
		playlist, ok := mediaPlaylistOf(o)
		if !ok {
			continue
		}
		_, pl, err := readPlaylist(cmd.OutDir, playlist)
		if err != nil {
			return nil, err
		}
		t := segmentedTrack{init: o}
		for _, s := range pl.segments {
			name, err := resolveRef(playlist, s.uri)
			if err != nil {
				return nil, err
			}
			t.segments = append(t.segments, name)
		}
		tracks = append(tracks, t)
	}
	return tracks, nil
}

// trackTimeline is one track's segments as their boxes describe them.
type trackTimeline struct {
	timescale uint32
	starts    []uint64 // each segment's first decode time
	end       uint64   // the last sample's decode time plus its duration
	sizes     []int64  // each segment's bytes
	frame     uint32   // the longest sample duration
	usual     uint32   // the most common sample duration
}

// readTimeline reads a track's init segment and the media segments its
// playlist lists, failing on a segment that does not start with a sync
// sample or does not continue the one before (its first decode time is
// the previous segment's last plus that sample's duration). Segments not
// in outDir are read from remote.
func readTimeline(outDir, initName, playlist string, remote Ledger) (trackTimeline, error) {
	segments, err := playlistSegments(outDir, playlist)
	if err != nil {
		return trackTimeline{}, err
	}
	return readSegments(outDir, initName, segments, remote)
}

// readSegments is readTimeline of an init segment and its media segments
// (names relative to outDir) in order.
func readSegments(outDir, initName string, segments []string, remote Ledger) (trackTimeline, error) {
	var tl trackTimeline
	trex, timescale, err := readInit(outDir, initName)
	if err != nil {
		return tl, err
	}
	tl.timescale = timescale
	counts := map[uint32]int{}
	for i, name := range segments {
		f, err := segmentFacts(outDir, name, trex, remote)
		if err != nil {
			return tl, err
		}
		if !f.Sync {
			return tl, fmt.Errorf("%s does not start with a keyframe", name)
		}
		if i > 0 && f.Start != tl.end {
			return tl, fmt.Errorf("%s starts at decode time %d, the segment before ends at %d (timescale %d)",
				name, f.Start, tl.end, tl.timescale)
		}
		tl.starts = append(tl.starts, f.Start)
		tl.sizes = append(tl.sizes, f.Size)
		for d, n := range f.Durations {
			tl.frame = max(tl.frame, d)
			counts[d] += n
		}
		tl.end = f.End
	}
	if len(tl.starts) == 0 {
		return tl, fmt.Errorf("%s has no media segments", initName)
	}
	for d, n := range counts {
		if n > counts[tl.usual] || (n == counts[tl.usual] && d > tl.usual) {
			tl.usual = d
		}
	}
	return tl, nil
}

// segmentTimes is readTimeline in seconds: each segment's first decode
// time, the longest frame and the track's total duration.
func segmentTimes(outDir, initName string, segments []string, remote Ledger) (starts []float64, frame, total float64, err error) {
	tl, err := readSegments(outDir, initName, segments, remote)
	if err != nil {
		return nil, 0, 0, err
	}
	ts := float64(tl.timescale)
	for _, s := range tl.starts {
		starts = append(starts, float64(s)/ts)
	}
	return starts, float64(tl.frame) / ts, float64(tl.end-tl.starts[0]) / ts, nil
}

// decodeMP4File parses one output file with mp4ff.
func decodeMP4File(outDir, name string) (*mp4.File, error) {
	data, err := os.ReadFile(filepath.Join(outDir, filepath.FromSlash(name)))
	if err != nil {
		return nil, err
	}
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}
