package ffmpeg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// vttCue is one cue of a storyboard index: a time range and the tile that
// stands for it.
type vttCue struct {
	start, end float64
	// file is the sheet's reference as written (relative to the index);
	// x, y, w, h the tile's rectangle in it.
	file       string
	x, y, w, h int
}

// formatStoryboardVTT writes the index of l: one cue per tile, covering
// [i x interval, (i+1) x interval) (the last one ending with the source),
// whose text is the sheet's name next to the index with a spatial media
// fragment, "sheet-1.jpg#xywh=160,0,160,90".
func formatStoryboardVTT(l encodespec.StoryboardLayout) []byte {
	var b bytes.Buffer
	b.WriteString("WEBVTT\n")
	for i := range l.Tiles {
		sheet, x, y := l.Tile(i)
		start, end := l.Cue(i)
		fmt.Fprintf(&b, "\n%s --> %s\n%s#xywh=%d,%d,%d,%d\n", vttTime(start), vttTime(end),
			path.Base(storyboardSheet(sheet)), x, y, l.TileWidth, l.TileHeight)
	}
	return b.Bytes()
}

// vttTime formats seconds as WebVTT's hh:mm:ss.ttt.
func vttTime(seconds float64) string {
	ms := int64(math.Round(seconds * 1000))
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3_600_000, ms/60_000%60, ms/1000%60, ms%1000)
}

// parseStoryboardVTT reads a storyboard index: the WEBVTT header, then
// cues of a timing line and one text line "<file>#xywh=x,y,w,h", an
// optional cue identifier before the timing line. It is strict about what
// a storyboard index holds, not a general WebVTT parser.
func parseStoryboardVTT(data []byte) ([]vttCue, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	if !sc.Scan() || strings.TrimPrefix(strings.TrimRight(sc.Text(), " \t\r"), "\ufeff") != "WEBVTT" {
		return nil, errors.New("no WEBVTT header")
	}
	var cues []vttCue
	var block []string
	flush := func() error {
		defer func() { block = block[:0] }()
		if len(block) == 0 {
			return nil
		}
		if !strings.Contains(block[0], "-->") && len(block) > 1 {
			block = block[1:] // cue identifier
		}
		if len(block) != 2 {
			return fmt.Errorf("cue %d: want a timing line and one text line, got %q", len(cues)+1, block)
		}
		c, err := parseCue(block[0], block[1])
		if err != nil {
			return fmt.Errorf("cue %d: %w", len(cues)+1, err)
		}
		cues = append(cues, c)
		return nil
	}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		block = append(block, line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return cues, nil
}

func parseCue(timing, text string) (vttCue, error) {
	from, to, ok := strings.Cut(timing, " --> ")
	if !ok {
		return vttCue{}, fmt.Errorf("timing line %q has no \" --> \"", timing)
	}
	var c vttCue
	var err error
	if c.start, err = parseVTTTime(from); err != nil {
		return vttCue{}, err
	}
	if c.end, err = parseVTTTime(strings.Fields(to + " ")[0]); err != nil {
		return vttCue{}, err
	}
	file, frag, ok := strings.Cut(text, "#xywh=")
	if !ok {
		return vttCue{}, fmt.Errorf("text %q has no #xywh= fragment", text)
	}
	c.file = file
	parts := strings.Split(frag, ",")
	if len(parts) != 4 {
		return vttCue{}, fmt.Errorf("fragment %q is not x,y,w,h", frag)
	}
	nums := make([]int, 4)
	for i, s := range parts {
		if nums[i], err = strconv.Atoi(s); err != nil || nums[i] < 0 {
			return vttCue{}, fmt.Errorf("fragment %q is not x,y,w,h in pixels", frag)
		}
	}
	c.x, c.y, c.w, c.h = nums[0], nums[1], nums[2], nums[3]
	return c, nil
}

// parseVTTTime reads [hh:]mm:ss.ttt.
func parseVTTTime(s string) (float64, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("timestamp %q is not [hh:]mm:ss.ttt", s)
	}
	secs, frac, ok := strings.Cut(parts[len(parts)-1], ".")
	if !ok || len(secs) != 2 || len(frac) != 3 {
		return 0, fmt.Errorf("timestamp %q is not [hh:]mm:ss.ttt", s)
	}
	total := 0.0
	for _, p := range slices.Concat(parts[:len(parts)-1], []string{secs, frac}) {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return 0, fmt.Errorf("timestamp %q is not [hh:]mm:ss.ttt", s)
		}
	}
	for _, p := range parts[:len(parts)-1] {
		n, _ := strconv.Atoi(p)
		total = total*60 + float64(n)
	}
	sec, _ := strconv.Atoi(secs)
	ms, _ := strconv.Atoi(frac)
	return total*60 + float64(sec) + float64(ms)/1000, nil
}
