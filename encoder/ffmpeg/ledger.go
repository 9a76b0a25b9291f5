package ffmpeg

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/Eyevinn/mp4ff/mp4"
)

// LedgerName is the file in a chunked encode's part where the part lists
// its media segments' facts (WriteLedger): the segments themselves go
// straight to their final place, and the stitch reads only this.
const LedgerName = "segments.json"

// SegmentFacts is what stitching needs to know of a media segment without
// reading it: its size, where it starts and ends on its track's decode
// timeline (in the init segment's timescale), whether it starts with a
// sync sample (a keyframe), and its samples' durations.
type SegmentFacts struct {
	Size  int64  `json:"size"`
	Start uint64 `json:"start"`
	End   uint64 `json:"end"`
	Sync  bool   `json:"sync"`
	// Durations counts the segment's samples by duration (one entry for a
	// constant frame rate).
	Durations map[uint32]int `json:"durations"`
}

// Ledger maps media segments' output names to their facts: the segments
// of a chunked encode that sit in storage, not in the stitch's output
// directory (Command.Remote).
type Ledger map[string]SegmentFacts

// IndexSegments reads the facts of every media segment of cmd's segmented
// tracks (video and audio), as their playlists list them, from the files
// in cmd.OutDir: what a chunk or the whole-input part records before its
// segments are uploaded to their final keys.
func IndexSegments(cmd Command) (Ledger, error) {
	l := Ledger{}
	err := eachTrack(cmd, func(init Output, segments []string) error {
		trex, _, err := readInit(cmd.OutDir, init.Name)
		if err != nil {
			return err
		}
		for _, name := range segments {
			if l[name], err = fileFacts(cmd.OutDir, name, trex); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index segments: %w", err)
	}
	return l, nil
}

// eachTrack calls fn with every segmented track (video or audio) of cmd:
// its init segment and the media segments its playlist lists, in order.
func eachTrack(cmd Command, fn func(init Output, segments []string) error) error {
	for _, o := range cmd.ExpectedOutputs {
		playlist, ok := mediaPlaylistOf(o)
		if _, family := familyOf(o); !ok || !family {
			continue
		}
		segments, err := playlistSegments(cmd.OutDir, playlist)
		if err != nil {
			return err
		}
		if err := fn(o, segments); err != nil {
			return err
		}
	}
	return nil
}

// playlistSegments lists the media segments a media playlist in outDir
// references, in order, as names relative to outDir.
func playlistSegments(outDir, playlist string) ([]string, error) {
	_, pl, err := readPlaylist(outDir, playlist)
	if err != nil {
		return nil, err
	}
	segments := make([]string, len(pl.segments))
	for i, s := range pl.segments {
		if segments[i], err = resolveRef(playlist, s.uri); err != nil {
			return nil, fmt.Errorf("%s: %w", playlist, err)
		}
	}
	return segments, nil
}

// WriteLedger writes l as dir's LedgerName.
func WriteLedger(dir string, l Ledger) error {
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("write %s: %w", LedgerName, err)
	}
	if err := os.WriteFile(filepath.Join(dir, LedgerName), data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", LedgerName, err)
	}
	return nil
}

// ReadLedger reads dir's LedgerName (nil when there is none: a part with
// no segments, or one that kept its segments) and removes the file, which
// is not an output.
func ReadLedger(dir string) (Ledger, error) {
	file := filepath.Join(dir, LedgerName)
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", LedgerName, err)
	}
	var l Ledger
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("read %s: %w", LedgerName, err)
	}
	for name, f := range l {
		if !isSegmentName(name) || f.Size <= 0 || f.End < f.Start || len(f.Durations) == 0 {
			return nil, fmt.Errorf("read %s: the entry for %q is not a media segment's", LedgerName, name)
		}
	}
	if err := os.Remove(file); err != nil {
		return nil, fmt.Errorf("read %s: %w", LedgerName, err)
	}
	return l, nil
}

// isSegmentName reports whether name could be a media segment of an
// output: a relative path inside the output directory to seg_*.m4s (an
// init segment, init_<i>.m4s, is never one).
func isSegmentName(name string) bool {
	base := path.Base(name)
	return strings.HasPrefix(base, "seg_") && path.Ext(base) == ".m4s" && filepath.IsLocal(filepath.FromSlash(name))
}

// remoteSegments is the part of the ledger of cmd, a part of a chunked
// encode, that its playlists reference and that is not in its directory:
// the media segments it left at their final keys. An entry of the ledger
// that no playlist lists is not taken.
func remoteSegments(cmd Command) (Ledger, error) {
	if len(cmd.Remote) == 0 {
		return nil, nil
	}
	l := Ledger{}
	err := eachTrack(cmd, func(init Output, segments []string) error {
		for _, name := range segments {
			if _, err := os.Lstat(filepath.Join(cmd.OutDir, filepath.FromSlash(name))); err == nil {
				continue
			}
			f, ok := cmd.Remote[name]
			if !ok {
				return fmt.Errorf("the playlist of %s lists %s, which is neither in the part nor in its ledger", init.Name, name)
			}
			l[name] = f
		}
		return nil
	})
	return l, err
}

// readInit reads a fragmented MP4 init segment: its track's defaults for
// the fragments and its timescale.
func readInit(outDir, initName string) (*mp4.TrexBox, uint32, error) {
	f, err := decodeMP4File(outDir, initName)
	if err != nil {
		return nil, 0, err
	}
	if f.Init == nil || f.Init.Moov == nil || f.Init.Moov.Trak == nil || f.Init.Moov.Mvex == nil {
		return nil, 0, fmt.Errorf("%s is not a fragmented MP4 init segment", initName)
	}
	return f.Init.Moov.Mvex.Trex, f.Init.Moov.Trak.Mdia.Mdhd.Timescale, nil
}

// fileFacts reads one media segment's facts from its file.
func fileFacts(outDir, name string, trex *mp4.TrexBox) (SegmentFacts, error) {
	f, err := decodeMP4File(outDir, name)
	if err != nil {
		return SegmentFacts{}, err
	}
	st, err := os.Stat(filepath.Join(outDir, filepath.FromSlash(name)))
	if err != nil {
		return SegmentFacts{}, err
	}
	var samples []mp4.FullSample
	for _, seg := range f.Segments {
		for _, frag := range seg.Fragments {
			fs, err := frag.GetFullSamples(trex)
			if err != nil {
				return SegmentFacts{}, fmt.Errorf("%s: %w", name, err)
			}
			samples = append(samples, fs...)
		}
	}
	if len(samples) == 0 {
		return SegmentFacts{}, fmt.Errorf("%s holds no samples", name)
	}
	facts := SegmentFacts{Size: st.Size(), Start: samples[0].DecodeTime, Sync: samples[0].IsSync(), Durations: map[uint32]int{}}
	for _, sm := range samples {
		facts.Durations[sm.Dur]++
		facts.End = sm.DecodeTime + uint64(sm.Dur)
	}
	return facts, nil
}

// segmentFacts is a segment's facts from its file in outDir, or, when the
// file is not there, from remote.
func segmentFacts(outDir, name string, trex *mp4.TrexBox, remote Ledger) (SegmentFacts, error) {
	if _, err := os.Stat(filepath.Join(outDir, filepath.FromSlash(name))); errors.Is(err, fs.ErrNotExist) {
		if f, ok := remote[name]; ok {
			return f, nil
		}
	}
	return fileFacts(outDir, name, trex)
}

// segmentSize is a segment's size from its file in outDir, or from
// remote when the file is not there.
func segmentSize(outDir, name string, remote Ledger) (int64, error) {
	st, err := os.Stat(filepath.Join(outDir, filepath.FromSlash(name)))
	if errors.Is(err, fs.ErrNotExist) {
		if f, ok := remote[name]; ok {
			return f.Size, nil
		}
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
