package apiv1

// Output kinds: the values of Output.Kind. The encoder reports them and the
// API returns them as they were reported; a client switches over these
// names rather than over file extensions.
const (
	// OutputVideo is a rendition's MP4 file, init segment or media segment.
	OutputVideo = "video"
	// OutputAudio is the shared audio rendition's init or media segment.
	OutputAudio = "audio"
	// OutputPlaylist is an HLS media or master playlist.
	OutputPlaylist = "playlist"
	// OutputManifest is the DASH MPD.
	OutputManifest = "manifest"
	// OutputThumbnail is an interval thumbnail (JPEG).
	OutputThumbnail = "thumbnail"
	// OutputPoster is the poster frame (JPEG).
	OutputPoster = "poster"
	// OutputStoryboard is a storyboard's WebVTT index: one cue per tile,
	// each pointing at "sheet-N.jpg#xywh=x,y,w,h" next to it. Its
	// attributes describe the grid (the StoryboardAttr… keys), so a player
	// integration can use the sheets without reading the index.
	OutputStoryboard = "storyboard"
	// OutputStoryboardSheet is one JPEG sprite sheet of a storyboard; its
	// attributes are width and height.
	OutputStoryboardSheet = "storyboard_sheet"
	// OutputSubtitles is a WebVTT subtitle track converted from a text
	// subtitle stream of the input or from a caption file given with the
	// job (JobRequest.Captions); its attributes are the SubtitleAttr…
	// keys.
	OutputSubtitles = "subtitles"
)

// Attributes of an audio rendition's init segment (OutputAudio), when the
// input's stream is tagged.
const (
	// AudioAttrLanguage is the rendition's language as a BCP 47 tag.
	AudioAttrLanguage = "language"
	// AudioAttrTitle is the input stream's title.
	AudioAttrTitle = "title"
)

// Attributes of an OutputSubtitles output.
const (
	// SubtitleAttrLanguage is the track's language as a BCP 47 tag ("en",
	// "und" when the input does not say).
	SubtitleAttrLanguage = "language"
	// SubtitleAttrTitle is the input stream's title, when it has one.
	SubtitleAttrTitle = "title"
	// SubtitleAttrSourceCodec is the input stream's codec (subrip, ass,
	// mov_text, webvtt, …).
	SubtitleAttrSourceCodec = "source_codec"
	// SubtitleAttrDefault and SubtitleAttrForced are "true" or "false", as
	// the input stream's disposition says.
	SubtitleAttrDefault = "default"
	SubtitleAttrForced  = "forced"
	// SubtitleAttrSource is SubtitleSourceSidecar for a track made from a
	// caption file given with the job, absent for the input's own streams.
	SubtitleAttrSource = "source"
	// SubtitleSourceSidecar is SubtitleAttrSource's value for a caption
	// file given with the job.
	SubtitleSourceSidecar = "sidecar"
)

// OutputKinds lists every output kind.
var OutputKinds = []string{
	OutputVideo, OutputAudio, OutputPlaylist, OutputManifest, OutputThumbnail, OutputPoster,
	OutputStoryboard, OutputStoryboardSheet, OutputSubtitles,
}

// Attributes of an OutputStoryboard output, all decimal numbers as strings
// like every output attribute.
const (
	// StoryboardAttrIntervalSeconds is the time one tile stands for.
	StoryboardAttrIntervalSeconds = "interval_seconds"
	// StoryboardAttrTiles is the number of tiles (and cues):
	// ceil(duration / interval).
	StoryboardAttrTiles = "tiles"
	// StoryboardAttrSheets is the number of sheets.
	StoryboardAttrSheets = "sheets"
	// StoryboardAttrTileWidth and StoryboardAttrTileHeight are one tile's
	// size in pixels.
	StoryboardAttrTileWidth  = "tile_width"
	StoryboardAttrTileHeight = "tile_height"
	// StoryboardAttrColumns and StoryboardAttrRows are the grid of every
	// sheet; tiles fill it row by row, the last sheet padded with black.
	StoryboardAttrColumns = "columns"
	StoryboardAttrRows    = "rows"
)
