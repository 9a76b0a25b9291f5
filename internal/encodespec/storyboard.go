package encodespec

import (
	"fmt"
	"math"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// Storyboard defaults, used by Normalize for fields left at zero: a 160-pixel
// tile every 5 s on 10x10 sheets covers 8 min 20 s per sheet, which is what
// scrubbing previews in common web players expect.
const (
	DefaultStoryboardIntervalSeconds = 5.0
	DefaultStoryboardTileWidth       = 160
	DefaultStoryboardColumns         = 10
	DefaultStoryboardRows            = 10
)

// Ranges enforced by Validate for storyboards.
const (
	minStoryboardTileWidth, maxStoryboardTileWidth = 32, 640
	maxStoryboardGrid                              = 20
	// MaxStoryboardSheetWidth bounds columns x tile_width: wider JPEGs are
	// refused as textures by some browsers and TV players.
	MaxStoryboardSheetWidth = 8192
)

// Storyboard asks for scrubbing previews: JPEG sprite sheets of small tiles,
// one tile every IntervalSeconds, and a WebVTT index whose cues point at
// each tile with a media fragment (sheet-1.jpg#xywh=x,y,w,h), the format
// video.js, Shaka, JW Player and hls.js thumbnails plugins read.
type Storyboard struct {
	// IntervalSeconds is the time one tile stands for (1..3600, default 5).
	IntervalSeconds float64 `json:"interval_seconds"`
	// TileWidth is the width of one tile in pixels (even, 32..640, default
	// 160, never wider than the source); the height follows the source's
	// aspect ratio, rounded to even.
	TileWidth int `json:"tile_width"`
	// Columns and Rows are the grid of one sheet (1..20 each, default
	// 10x10); an input that needs more tiles gets more sheets.
	Columns int `json:"columns"`
	Rows    int `json:"rows"`
}

func (b *Storyboard) normalize() {
	if b.IntervalSeconds == 0 {
		b.IntervalSeconds = DefaultStoryboardIntervalSeconds
	}
	if b.TileWidth == 0 {
		b.TileWidth = DefaultStoryboardTileWidth
	}
	if b.Columns == 0 {
		b.Columns = DefaultStoryboardColumns
	}
	if b.Rows == 0 {
		b.Rows = DefaultStoryboardRows
	}
}

func (b Storyboard) validate(errs *validation.Errors, path string) {
	if !inRange(b.IntervalSeconds, minInterval, maxInterval) {
		errs.Add(path+".interval_seconds", "must be from %g to %g seconds, got %g", minInterval, maxInterval, b.IntervalSeconds)
	}
	tileOK := b.TileWidth >= minStoryboardTileWidth && b.TileWidth <= maxStoryboardTileWidth && b.TileWidth%2 == 0
	if !tileOK {
		errs.Add(path+".tile_width", "must be an even number from %d to %d pixels, got %d", minStoryboardTileWidth, maxStoryboardTileWidth, b.TileWidth)
	}
	switch {
	case b.Columns < 1 || b.Columns > maxStoryboardGrid:
		errs.Add(path+".columns", "must be from 1 to %d, got %d", maxStoryboardGrid, b.Columns)
	case tileOK && b.Columns*b.TileWidth > MaxStoryboardSheetWidth:
		errs.Add(path+".columns", "columns x tile_width is %d pixels, more than the %d a sheet may be wide; use at most %d columns of %d pixels",
			b.Columns*b.TileWidth, MaxStoryboardSheetWidth, MaxStoryboardSheetWidth/b.TileWidth, b.TileWidth)
	}
	if b.Rows < 1 || b.Rows > maxStoryboardGrid {
		errs.Add(path+".rows", "must be from 1 to %d, got %d", maxStoryboardGrid, b.Rows)
	}
}

// StoryboardLayout is where every tile of a storyboard goes for one source:
// how many tiles, their size, the grid of a sheet and how many sheets.
// The encoder builds the FFmpeg filter, the WebVTT index and the checks of
// its outputs from the same layout.
type StoryboardLayout struct {
	// IntervalSeconds is the time one tile stands for; DurationSeconds the
	// source's duration, where the last cue ends.
	IntervalSeconds, DurationSeconds float64
	// Tiles is ceil(duration / interval): one tile per started interval.
	Tiles int
	// TileWidth and TileHeight are one tile's size in pixels, both even.
	TileWidth, TileHeight int
	// Columns and Rows are a sheet's grid. A storyboard that fits on one
	// sheet gets a grid shrunk to its tiles (7 tiles on a 10x10 grid give a
	// 7x1 sheet), so no sheet is mostly blank; every sheet of a storyboard
	// has the same grid and size, the last one padded with black.
	Columns, Rows int
	// Sheets is the number of sheet images.
	Sheets int
}

// Layout computes the storyboard of a source of width x height pixels
// lasting duration seconds. The storyboard must be valid (normalized and
// validated) and fitted to the source with Spec.ForSource; duration and the
// size must be positive.
func (b Storyboard) Layout(duration float64, width, height int) StoryboardLayout {
	l := StoryboardLayout{IntervalSeconds: b.IntervalSeconds, DurationSeconds: duration, TileWidth: b.TileWidth}
	// The tolerance keeps 20.0000001 s at 4 tiles of 5 s: a probe's
	// rounding is no started interval.
	l.Tiles = max(1, int(math.Ceil(duration/b.IntervalSeconds-1e-6)))
	l.TileHeight = max(2, 2*int(math.Round(float64(b.TileWidth)*float64(height)/float64(width)/2)))
	l.Columns = min(b.Columns, l.Tiles)
	l.Rows = min(b.Rows, (l.Tiles+l.Columns-1)/l.Columns)
	perSheet := l.Columns * l.Rows
	l.Sheets = (l.Tiles + perSheet - 1) / perSheet
	return l
}

// SheetWidth and SheetHeight are the size of every sheet in pixels.
func (l StoryboardLayout) SheetWidth() int  { return l.Columns * l.TileWidth }
func (l StoryboardLayout) SheetHeight() int { return l.Rows * l.TileHeight }

// Tile says where tile i (0-based, in time order) is: its sheet (0-based)
// and the offset of its top-left corner in that sheet. Tiles fill a sheet
// row by row, as FFmpeg's tile filter places them.
func (l StoryboardLayout) Tile(i int) (sheet, x, y int) {
	perSheet := l.Columns * l.Rows
	sheet, i = i/perSheet, i%perSheet
	return sheet, (i % l.Columns) * l.TileWidth, (i / l.Columns) * l.TileHeight
}

// Cue is the time range tile i stands for: [i*interval, (i+1)*interval),
// the last one ending with the source.
func (l StoryboardLayout) Cue(i int) (start, end float64) {
	start = float64(i) * l.IntervalSeconds
	end = min(start+l.IntervalSeconds, l.DurationSeconds)
	return start, max(end, start)
}

// String describes the layout for logs and errors.
func (l StoryboardLayout) String() string {
	return fmt.Sprintf("%d tiles of %dx%d every %gs on %d sheet(s) of %dx%d", l.Tiles, l.TileWidth, l.TileHeight,
		l.IntervalSeconds, l.Sheets, l.Columns, l.Rows)
}
