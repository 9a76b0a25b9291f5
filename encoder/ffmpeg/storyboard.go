package ffmpeg

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

const (
	// storyboardDir holds the sheets and their index, so the index's
	// references are bare file names next to it.
	storyboardDir = "storyboard"
	// storyboardIndex is the WebVTT index of the storyboard.
	storyboardIndex = storyboardDir + "/storyboard.vtt"
	// maxSheetHeight is the tallest JPEG there can be; a sheet of many
	// rows of tall (portrait) tiles could otherwise exceed it.
	maxSheetHeight = 65535
)

// storyboardSheet is the name of sheet i (0-based) relative to the output
// directory; sheets are numbered from 1 as FFmpeg's image2 muxer does.
func storyboardSheet(i int) string {
	return fmt.Sprintf("%s/sheet-%d.jpg", storyboardDir, i+1)
}

// storyboardBranch is the filter chain of the storyboard, without its
// input label. It makes exactly l.Tiles tiles: tile i is the first frame at
// or after i x interval, counted from the first video frame as the probed
// duration is (FFmpeg already shifts an input to start at 0, MPEG-TS's
// 1.4 s included; setpts also covers a video stream that starts after the
// audio). tpad clones the
// last frame for one more interval, so a last interval that starts after
// the last frame (a 20.02 s input at 25 fps has no frame at 20 s) still
// gets its tile; trim stops after the last tile, which also ends the branch
// early for split. tile then packs them row by row into sheets of
// Columns x Rows, the last one padded with black. Every value comes from
// the validated spec and the probe: numbers only.
func storyboardBranch(l encodespec.StoryboardLayout) string {
	interval := formatFloat(l.IntervalSeconds)
	return fmt.Sprintf("setpts=PTS-STARTPTS,tpad=stop_mode=clone:stop_duration=%s,select='gte(t,selected_n*%s)',"+
		"trim=end_frame=%d,scale=w=%d:h=%d:flags=bicubic,setsar=1,tile=layout=%dx%d",
		interval, interval, l.Tiles, l.TileWidth, l.TileHeight, l.Columns, l.Rows)
}

// storyboard adds the storyboard's JPEG output, its expected sheets and
// its index. The index is written by Run once FFmpeg has succeeded.
func (p *planner) storyboard() error {
	if p.sbLabel == "" {
		return nil
	}
	l := p.sbLayout
	if l.SheetHeight() > maxSheetHeight {
		return inputError(fmt.Sprintf("the storyboard sheets would be %dx%d pixels for this %dx%d input, taller than a JPEG may be (%d); "+
			"ask for fewer storyboard rows or a narrower tile_width", l.SheetWidth(), l.SheetHeight(), p.in.Width, p.in.Height, maxSheetHeight))
	}
	p.dirs = append(p.dirs, storyboardDir)
	p.args = append(p.args, "-map", "["+p.sbLabel+"]", "-c:v", "mjpeg", "-q:v", "3", "-fps_mode", "passthrough",
		"-map_metadata", "-1", "-f", "image2", "-start_number", "1", storyboardDir+"/sheet-%d.jpg")
	for i := range l.Sheets {
		p.expected = append(p.expected, Output{
			Name: storyboardSheet(i), Kind: KindStoryboardSheet, ContentType: ContentTypeJPEG,
			Width: l.SheetWidth(), Height: l.SheetHeight(),
		})
	}
	p.expected = append(p.expected, Output{
		Name: storyboardIndex, Kind: KindStoryboard, ContentType: ContentTypeVTT,
		Attributes: storyboardAttributes(l),
	})
	return nil
}

// storyboardAttributes are the facts recorded on the job for the index, so
// a player integration knows the grid without parsing the file.
func storyboardAttributes(l encodespec.StoryboardLayout) map[string]string {
	return map[string]string{
		apiv1.StoryboardAttrIntervalSeconds: formatFloat(l.IntervalSeconds),
		apiv1.StoryboardAttrTiles:           strconv.Itoa(l.Tiles),
		apiv1.StoryboardAttrSheets:          strconv.Itoa(l.Sheets),
		apiv1.StoryboardAttrTileWidth:       strconv.Itoa(l.TileWidth),
		apiv1.StoryboardAttrTileHeight:      strconv.Itoa(l.TileHeight),
		apiv1.StoryboardAttrColumns:         strconv.Itoa(l.Columns),
		apiv1.StoryboardAttrRows:            strconv.Itoa(l.Rows),
	}
}

// writeStoryboardIndex writes the WebVTT index of the planned storyboard.
func writeStoryboardIndex(cmd Command) error {
	if cmd.Storyboard == nil {
		return nil
	}
	data := formatStoryboardVTT(*cmd.Storyboard)
	if err := os.WriteFile(filepath.Join(cmd.OutDir, filepath.FromSlash(storyboardIndex)), data, 0o644); err != nil {
		return fmt.Errorf("write storyboard index: %w", err)
	}
	return nil
}
