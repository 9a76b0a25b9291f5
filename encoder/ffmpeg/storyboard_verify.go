package ffmpeg

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
)

// cueTolerance is how far a cue's start or end may be from where the
// interval puts it: the index is written in milliseconds.
const cueTolerance = 0.0015

// checkStoryboard checks the storyboard against the input and the sheets
// as they are, independently of how they were planned where it can:
//
//   - the index parses as WebVTT and has ceil(duration / interval) cues,
//     contiguous from 0, each covering one interval (the last one ending
//     with the input);
//   - every cue references a sheet next to the index that is among the
//     outputs, with a tile of the planned size whose rectangle lies inside
//     that sheet's dimensions as ffprobe measures them;
//   - there are as many sheets as the cues need, no more, every one of them
//     referenced and of the planned size.
func (v *verifier) checkStoryboard(ctx context.Context, ffprobe string, in MediaInfo) error {
	l := v.cmd.Storyboard
	if l == nil {
		return nil
	}
	sheets := map[string][2]int{} // name -> measured width, height
	for _, o := range v.have {
		if o.Kind != KindStoryboardSheet {
			continue
		}
		w, h, err := imageSize(ctx, ffprobe, filepath.Join(v.cmd.OutDir, filepath.FromSlash(o.Name)))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			v.fail("storyboard sheet %s: %w", o.Name, err)
			continue
		}
		sheets[o.Name] = [2]int{w, h}
		if w != l.SheetWidth() || h != l.SheetHeight() {
			v.fail("storyboard sheet %s is %dx%d, want %dx%d (%s)", o.Name, w, h, l.SheetWidth(), l.SheetHeight(), l)
		}
	}

	if _, ok := v.have[storyboardIndex]; !ok {
		return nil // reported as a missing expected output
	}
	data, ok := v.read(storyboardIndex)
	if !ok {
		return nil
	}
	cues, err := parseStoryboardVTT(data)
	if err != nil {
		v.fail("%s: %w", storyboardIndex, err)
		return nil
	}
	want := int(math.Ceil(in.DurationSeconds/l.IntervalSeconds - 1e-6))
	if len(cues) != want {
		v.fail("%s has %d cues, want %d (%.3f s at one per %g s)", storyboardIndex, len(cues), want, in.DurationSeconds, l.IntervalSeconds)
	}
	referenced := map[string]bool{}
	for i, c := range cues {
		start := float64(i) * l.IntervalSeconds
		end := min(start+l.IntervalSeconds, in.DurationSeconds)
		if math.Abs(c.start-start) > cueTolerance || math.Abs(c.end-end) > cueTolerance {
			v.fail("%s: cue %d covers %.3f-%.3f s, want %.3f-%.3f s", storyboardIndex, i+1, c.start, c.end, start, end)
		}
		name, ok := v.ref(storyboardIndex, c.file)
		if !ok {
			continue
		}
		if v.have[name].Kind != KindStoryboardSheet {
			v.fail("%s: cue %d references %s, which is no storyboard sheet", storyboardIndex, i+1, name)
			continue
		}
		referenced[name] = true
		size, measured := sheets[name]
		if !measured {
			continue
		}
		if c.w != l.TileWidth || c.h != l.TileHeight {
			v.fail("%s: cue %d's tile is %dx%d, want %dx%d", storyboardIndex, i+1, c.w, c.h, l.TileWidth, l.TileHeight)
		}
		if c.w == 0 || c.h == 0 || c.x+c.w > size[0] || c.y+c.h > size[1] {
			v.fail("%s: cue %d's tile %d,%d,%d,%d does not lie inside %s (%dx%d)", storyboardIndex, i+1, c.x, c.y, c.w, c.h, name, size[0], size[1])
		}
	}
	perSheet := l.Columns * l.Rows
	if wantSheets := (len(cues) + perSheet - 1) / perSheet; len(sheets) != wantSheets {
		v.fail("the storyboard has %d sheets, want %d for %d cues on %dx%d grids", len(sheets), wantSheets, len(cues), l.Columns, l.Rows)
	}
	for name := range sheets {
		if !referenced[name] {
			v.fail("storyboard sheet %s is referenced by no cue of %s", name, storyboardIndex)
		}
	}
	return nil
}

// imageSize measures an image file with ffprobe, read as a JPEG from the
// local file alone.
func imageSize(ctx context.Context, ffprobe, file string) (int, int, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return 0, 0, err
	}
	var stdout bytes.Buffer
	stderr := newTailBuffer(5)
	cmd := command(ctx, ffprobe, "-v", "error", "-f", "jpeg_pipe", "-protocol_whitelist", "file",
		"-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0", "file:"+abs)
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("ffprobe: %w: %s", err, stderr.String())
	}
	ws, hs, ok := strings.Cut(strings.TrimSpace(stdout.String()), ",")
	w, werr := strconv.Atoi(ws)
	h, herr := strconv.Atoi(hs)
	if !ok || werr != nil || herr != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("ffprobe reported no image size: %q", stdout.String())
	}
	return w, h, nil
}
