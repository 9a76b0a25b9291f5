package ffmpeg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
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
// It returns the command that describes the stitched output, for Collect,
// Verify and (HLS) CheckSeams. outDir must be empty or absent; on error
// its contents are not an output.
func Stitch(ctx context.Context, ffmpegBin, outDir string, chunks []Chunk, parts []Command, whole Command) (Command, error) {
	if len(chunks) == 0 || len(chunks) != len(parts) {
		return Command{}, fmt.Errorf("stitch: %d chunks and %d chunk parts", len(chunks), len(parts))
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Command{}, fmt.Errorf("stitch: %w", err)
	}
	cmd := Command{OutDir: outDir, Encoders: parts[0].Encoders, Storyboard: whole.Storyboard}
	hls := false
	for _, o := range parts[0].ExpectedOutputs {
		if o.Kind != KindVideo {
			cmd.ExpectedOutputs = append(cmd.ExpectedOutputs, o)
			continue
		}
		if playlist, ok := mediaPlaylistOf(o); ok {
			hls = true
			if err := stitchRendition(outDir, o.Name, playlist, chunks, parts); err != nil {
				return Command{}, fmt.Errorf("stitch rendition %s: %w", o.Rendition, err)
			}
		} else if err := joinMP4(ctx, ffmpegBin, outDir, o.Name, parts, whole); err != nil {
			return Command{}, fmt.Errorf("stitch rendition %s: %w", o.Rendition, err)
		}
		cmd.ExpectedOutputs = append(cmd.ExpectedOutputs, o)
	}
	if err := os.RemoveAll(filepath.Join(whole.OutDir, chunkAudio)); err != nil {
		return Command{}, fmt.Errorf("stitch: %w", err)
	}
	if err := moveTree(whole.OutDir, outDir); err != nil {
		return Command{}, fmt.Errorf("stitch: %w", err)
	}
	for _, o := range whole.ExpectedOutputs {
		if o.Name != chunkAudio {
			cmd.ExpectedOutputs = append(cmd.ExpectedOutputs, o)
		}
	}
	if hls {
		cmd.ExpectedOutputs = append(cmd.ExpectedOutputs, Output{Name: masterPlaylist, Kind: KindPlaylist, ContentType: ContentTypeHLS})
		if err := writeMaster(cmd); err != nil {
			return Command{}, fmt.Errorf("stitch: %w", err)
		}
	}
	return cmd, nil
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
	if _, err := os.Stat(filepath.Join(whole.OutDir, chunkAudio)); err == nil {
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
	out, err := exec.CommandContext(ctx, ffmpegBin, args...).CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("join: %w", ctx.Err())
		}
		return fmt.Errorf("join with ffmpeg (%w): %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// stitchRendition moves one rendition's segments from every chunk into
// outDir and writes its media playlist.
func stitchRendition(outDir, initName, playlist string, chunks []Chunk, parts []Command) error {
	dir := path.Dir(initName)
	if err := os.MkdirAll(filepath.Join(outDir, filepath.FromSlash(dir)), 0o755); err != nil {
		return err
	}
	var first []byte
	var all hlsPlaylist
	for i, part := range parts {
		c := chunks[i]
		_, pl, err := readPlaylist(part.OutDir, playlist)
		if err != nil {
			return fmt.Errorf("chunk %d: %w", c.Index, err)
		}
		if pl.mapURI != path.Base(initName) || len(pl.segments) == 0 {
			return fmt.Errorf("chunk %d: its playlist has init segment %q and %d segments", c.Index, pl.mapURI, len(pl.segments))
		}
		init, err := os.ReadFile(filepath.Join(part.OutDir, filepath.FromSlash(initName)))
		if err != nil {
			return fmt.Errorf("chunk %d: %w", c.Index, err)
		}
		desc, ok := findBox(init, "stsd")
		if !ok {
			return fmt.Errorf("chunk %d: %s has no sample description", c.Index, initName)
		}
		if i == 0 {
			first = desc
			if err := os.WriteFile(filepath.Join(outDir, filepath.FromSlash(initName)), init, 0o644); err != nil {
				return err
			}
		} else if !bytes.Equal(desc, first) {
			return fmt.Errorf("chunk %d: its stream's sample description differs from chunk 0's (the encoder's settings changed between chunks)", c.Index)
		}
		for k, s := range pl.segments {
			want := c.FirstSegment + k
			if s.uri != segmentName(want) {
				return fmt.Errorf("chunk %d: segment %d is %q, want %q", c.Index, k, s.uri, segmentName(want))
			}
			from := filepath.Join(part.OutDir, filepath.FromSlash(dir), s.uri)
			if err := os.Rename(from, filepath.Join(outDir, filepath.FromSlash(dir), s.uri)); err != nil {
				return fmt.Errorf("chunk %d: %w", c.Index, err)
			}
		}
		if i+1 < len(chunks) && c.FirstSegment+len(pl.segments) != chunks[i+1].FirstSegment {
			return fmt.Errorf("chunk %d wrote segments %d to %d, but chunk %d starts at segment %d",
				c.Index, c.FirstSegment, c.FirstSegment+len(pl.segments)-1, chunks[i+1].Index, chunks[i+1].FirstSegment)
		}
		all.segments = append(all.segments, pl.segments...)
	}
	all.mapURI = path.Base(initName)
	return writeAtomically(filepath.Join(outDir, filepath.FromSlash(playlist)), vodPlaylist(all, playlistKeys{}))
}

// segmentName is an HLS media segment's name as the planner numbers them.
func segmentName(n int) string { return fmt.Sprintf("seg_%05d.m4s", n) }

// moveTree moves every file under from into the same place under to.
func moveTree(from, to string) error {
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
	var errs []error
	var reference []float64 // segment start times of the first rendition
	var refName string
	for _, init := range cmd.ExpectedOutputs {
		if init.Kind != KindVideo {
			continue
		}
		playlist, ok := mediaPlaylistOf(init)
		if !ok {
			continue
		}
		starts, frame, total, err := segmentTimes(cmd.OutDir, init.Name, playlist)
		if err != nil {
			errs = append(errs, fmt.Errorf("rendition %s: %w", init.Rendition, err))
			continue
		}
		if math.Abs(total-in.DurationSeconds) > frame+1e-6 {
			errs = append(errs, fmt.Errorf("rendition %s lasts %.4f s, the input %.4f s (more than a frame apart)", init.Rendition, total, in.DurationSeconds))
		}
		if reference == nil {
			reference, refName = starts, init.Rendition
			continue
		}
		if len(starts) != len(reference) {
			errs = append(errs, fmt.Errorf("rendition %s has %d segments, %s %d", init.Rendition, len(starts), refName, len(reference)))
			continue
		}
		for i := range starts {
			if math.Abs(starts[i]-reference[i]) > frame/2 {
				errs = append(errs, fmt.Errorf("segment %d starts at %.4f s in rendition %s and at %.4f s in %s", i, starts[i], init.Rendition, reference[i], refName))
				break
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("check seams: %w", errors.Join(errs...))
	}
	return nil
}

// segmentTimes reads one rendition's init segment and media segments and
// returns each segment's first decode time in seconds, the longest frame
// duration and the rendition's total duration, failing on a segment that
// does not start with a keyframe or does not continue the one before.
func segmentTimes(outDir, initName, playlist string) (starts []float64, frame, total float64, err error) {
	_, pl, err := readPlaylist(outDir, playlist)
	if err != nil {
		return nil, 0, 0, err
	}
	initFile, err := decodeMP4File(outDir, initName)
	if err != nil {
		return nil, 0, 0, err
	}
	if initFile.Init == nil || initFile.Init.Moov == nil || initFile.Init.Moov.Trak == nil || initFile.Init.Moov.Mvex == nil {
		return nil, 0, 0, fmt.Errorf("%s is not a fragmented MP4 init segment", initName)
	}
	timescale := float64(initFile.Init.Moov.Trak.Mdia.Mdhd.Timescale)
	trex := initFile.Init.Moov.Mvex.Trex
	var next uint64
	var maxDur uint32
	var first uint64
	for i, s := range pl.segments {
		name, err := resolveRef(playlist, s.uri)
		if err != nil {
			return nil, 0, 0, err
		}
		f, err := decodeMP4File(outDir, name)
		if err != nil {
			return nil, 0, 0, err
		}
		var samples []mp4.FullSample
		for _, seg := range f.Segments {
			for _, frag := range seg.Fragments {
				fs, err := frag.GetFullSamples(trex)
				if err != nil {
					return nil, 0, 0, fmt.Errorf("%s: %w", name, err)
				}
				samples = append(samples, fs...)
			}
		}
		if len(samples) == 0 {
			return nil, 0, 0, fmt.Errorf("%s holds no samples", name)
		}
		if !samples[0].IsSync() {
			return nil, 0, 0, fmt.Errorf("%s does not start with a keyframe", name)
		}
		if i == 0 {
			first = samples[0].DecodeTime
		} else if samples[0].DecodeTime != next {
			return nil, 0, 0, fmt.Errorf("%s starts at decode time %d, the segment before ends at %d (timescale %s)",
				name, samples[0].DecodeTime, next, strconv.FormatFloat(timescale, 'f', -1, 64))
		}
		starts = append(starts, float64(samples[0].DecodeTime)/timescale)
		for _, sm := range samples {
			maxDur = max(maxDur, sm.Dur)
			next = sm.DecodeTime + uint64(sm.Dur)
		}
	}
	if len(starts) == 0 {
		return nil, 0, 0, fmt.Errorf("%s lists no segments", playlist)
	}
	return starts, float64(maxDur) / timescale, float64(next-first) / timescale, nil
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
