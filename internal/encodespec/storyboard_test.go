package encodespec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStoryboard(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		raw  string
		want Storyboard
	}{
		"defaults": {
			raw:  `{"storyboard": {}}`,
			want: Storyboard{IntervalSeconds: 5, TileWidth: 160, Columns: 10, Rows: 10},
		},
		"explicit": {
			raw:  `{"storyboard": {"interval_seconds": 2.5, "tile_width": 240, "columns": 5, "rows": 3}}`,
			want: Storyboard{IntervalSeconds: 2.5, TileWidth: 240, Columns: 5, Rows: 3},
		},
		"partial": {
			raw:  `{"storyboard": {"interval_seconds": 10}}`,
			want: Storyboard{IntervalSeconds: 10, TileWidth: 160, Columns: 10, Rows: 10},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse([]byte(tt.raw))
			require.NoError(t, err)
			require.NotNil(t, got.Storyboard)
			assert.Empty(t, cmp.Diff(tt.want, *got.Storyboard))
			assert.Empty(t, got.Packaging)
		})
	}
}

func TestParseStoryboardErrors(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		raw    string
		fields []string
	}{
		"unknown field":     {raw: `{"storyboard": {"interval": 5}}`, fields: []string{"storyboard.interval"}},
		"wrong type":        {raw: `{"storyboard": {"columns": "10"}}`, fields: []string{"storyboard.columns"}},
		"fractional rows":   {raw: `{"storyboard": {"rows": 2.5}}`, fields: []string{"storyboard.rows"}},
		"out of range":      {raw: `{"storyboard": {"columns": 30, "rows": 21}}`, fields: []string{"storyboard.columns", "storyboard.rows"}},
		"with packaging":    {raw: `{"storyboard": {}, "packaging": "hls"}`, fields: []string{"packaging"}},
		"with audio only":   {raw: `{"storyboard": {}, "audio": {}}`, fields: []string{"audio"}},
		"negative interval": {raw: `{"storyboard": {"interval_seconds": -5}}`, fields: []string{"storyboard.interval_seconds"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.raw))
			errs := fieldErrors(t, err)
			assert.Equal(t, tt.fields, fields(errs))
		})
	}
}

func TestStoryboardLayout(t *testing.T) {
	t.Parallel()

	def := Storyboard{IntervalSeconds: 5, TileWidth: 160, Columns: 10, Rows: 10}
	tests := map[string]struct {
		sb       Storyboard
		duration float64
		w, h     int
		want     StoryboardLayout
	}{
		"23 s at 5 s: 5 tiles, one row": {
			sb: def, duration: 23, w: 1280, h: 720,
			want: StoryboardLayout{Tiles: 5, TileWidth: 160, TileHeight: 90, Columns: 5, Rows: 1, Sheets: 1},
		},
		"exact multiple: no empty last cue": {
			sb: def, duration: 20, w: 1280, h: 720,
			want: StoryboardLayout{Tiles: 4, TileWidth: 160, TileHeight: 90, Columns: 4, Rows: 1, Sheets: 1},
		},
		"probe rounding is no started interval": {
			sb: def, duration: 20.0000001, w: 1280, h: 720,
			want: StoryboardLayout{Tiles: 4, TileWidth: 160, TileHeight: 90, Columns: 4, Rows: 1, Sheets: 1},
		},
		"a started interval counts": {
			sb: def, duration: 20.04, w: 1280, h: 720,
			want: StoryboardLayout{Tiles: 5, TileWidth: 160, TileHeight: 90, Columns: 5, Rows: 1, Sheets: 1},
		},
		"shorter than one interval": {
			sb: def, duration: 0.5, w: 640, h: 360,
			want: StoryboardLayout{Tiles: 1, TileWidth: 160, TileHeight: 90, Columns: 1, Rows: 1, Sheets: 1},
		},
		"grid shrinks to the tiles": {
			sb: def, duration: 63, w: 640, h: 360,
			want: StoryboardLayout{Tiles: 13, TileWidth: 160, TileHeight: 90, Columns: 10, Rows: 2, Sheets: 1},
		},
		"more tiles than a sheet holds": {
			sb:       Storyboard{IntervalSeconds: 1, TileWidth: 64, Columns: 3, Rows: 2},
			duration: 7.2, w: 640, h: 360,
			want: StoryboardLayout{Tiles: 8, TileWidth: 64, TileHeight: 36, Columns: 3, Rows: 2, Sheets: 2},
		},
		"odd aspect: height rounded to even": {
			sb: def, duration: 5, w: 320, h: 250, // 160 x 125 -> 126
			want: StoryboardLayout{Tiles: 1, TileWidth: 160, TileHeight: 126, Columns: 1, Rows: 1, Sheets: 1},
		},
		"portrait": {
			sb: def, duration: 10, w: 1080, h: 1920, // 160 x 284.4 -> 284
			want: StoryboardLayout{Tiles: 2, TileWidth: 160, TileHeight: 284, Columns: 2, Rows: 1, Sheets: 1},
		},
		"very wide: at least 2 high": {
			sb: def, duration: 5, w: 7680, h: 32,
			want: StoryboardLayout{Tiles: 1, TileWidth: 160, TileHeight: 2, Columns: 1, Rows: 1, Sheets: 1},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tt.want.IntervalSeconds, tt.want.DurationSeconds = tt.sb.IntervalSeconds, tt.duration
			got := tt.sb.Layout(tt.duration, tt.w, tt.h)
			assert.Empty(t, cmp.Diff(tt.want, got))
			perSheet := got.Columns * got.Rows
			assert.GreaterOrEqual(t, got.Sheets*perSheet, got.Tiles, "every tile has a place")
			assert.Less(t, (got.Sheets-1)*perSheet, got.Tiles, "no sheet is empty")
		})
	}
}

func TestStoryboardTilesAndCues(t *testing.T) {
	t.Parallel()

	l := Storyboard{IntervalSeconds: 1, TileWidth: 64, Columns: 3, Rows: 2}.Layout(7.2, 640, 360)
	type place struct{ sheet, x, y int }
	want := []place{{0, 0, 0}, {0, 64, 0}, {0, 128, 0}, {0, 0, 36}, {0, 64, 36}, {0, 128, 36}, {1, 0, 0}, {1, 64, 0}}
	for i, w := range want {
		sheet, x, y := l.Tile(i)
		assert.Equal(t, w, place{sheet, x, y}, "tile %d", i)
	}
	assert.Equal(t, 192, l.SheetWidth())
	assert.Equal(t, 72, l.SheetHeight())

	start, end := l.Cue(0)
	assert.Equal(t, [2]float64{0, 1}, [2]float64{start, end})
	start, end = l.Cue(7)
	assert.InDelta(t, 7, start, 1e-9)
	assert.InDelta(t, 7.2, end, 1e-9, "the last cue ends with the source")
}

func TestForSourceStoryboard(t *testing.T) {
	t.Parallel()

	s := Spec{Storyboard: &Storyboard{}}
	s.Normalize()
	tests := map[string]struct {
		src   size
		width int
	}{
		"wide source keeps 160":   {src: size{1920, 1080}, width: 160},
		"narrow source limits it": {src: size{101, 144}, width: 100},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := s.ForSource(tt.src.W, tt.src.H)
			assert.Equal(t, tt.width, got.Storyboard.TileWidth)
			assert.Equal(t, DefaultStoryboardTileWidth, s.Storyboard.TileWidth, "the receiver is unchanged")
		})
	}
}
