package ffmpeg

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// finishCMAFPlaylists rewrites the HLS media playlists the DASH muxer
// wrote beside the MPD (CMAF packaging: media_<i>.m3u8 at the top of the
// output) as the VOD playlists HLS packaging writes: the same segments and
// durations, with EXT-X-PLAYLIST-TYPE:VOD and EXT-X-INDEPENDENT-SEGMENTS
// (every segment starts on a keyframe) and without the muxer's wall-clock
// EXT-X-PROGRAM-DATE-TIME, which would make two encodes of one input differ.
// A command without such playlists is left alone.
func finishCMAFPlaylists(cmd Command) error {
	for _, o := range cmd.ExpectedOutputs {
		if o.Kind != KindPlaylist || !strings.HasPrefix(o.Name, "media_") || strings.Contains(o.Name, "/") {
			continue
		}
		file, pl, err := readPlaylist(cmd.OutDir, o.Name)
		if err != nil {
			return fmt.Errorf("finish: %w", err)
		}
		if pl.mapURI == "" || len(pl.segments) == 0 {
			return fmt.Errorf("finish %s: the muxer wrote no init segment or no segments", o.Name)
		}
		if err := writeAtomically(file, vodPlaylist(pl, playlistKeys{})); err != nil {
			return fmt.Errorf("finish %s: %w", o.Name, err)
		}
	}
	return nil
}

// playlistKeys are the EXT-X-KEY lines of an encrypted media playlist (see
// Encrypt): one before the EXT-X-MAP, or one before each segment.
type playlistKeys struct {
	beforeMap string
	segment   []string
}

// vodPlaylist writes pl's init segment and segments as a VOD media
// playlist, with keys' tags. The target duration is the longest segment
// rounded to the nearest second (RFC 8216 section 4.3.3.1), at least 1.
func vodPlaylist(pl hlsPlaylist, keys playlistKeys) []byte {
	target := 1
	for _, s := range pl.segments {
		target = max(target, int(math.Round(s.duration)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n", target)
	fmt.Fprintf(&b, "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n%s#EXT-X-MAP:URI=%q\n", keys.beforeMap, pl.mapURI)
	for i, s := range pl.segments {
		if i < len(keys.segment) {
			b.WriteString(keys.segment[i])
		}
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n%s\n", s.duration, s.uri)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return []byte(b.String())
}

// readPlaylist reads and parses the playlist name (forward slashes) under
// outDir; it returns the file's path for writing it back.
func readPlaylist(outDir, name string) (string, hlsPlaylist, error) {
	file := filepath.Join(outDir, filepath.FromSlash(name))
	data, err := os.ReadFile(file)
	if err != nil {
		return "", hlsPlaylist{}, err
	}
	pl, err := parseM3U8(data)
	if err != nil {
		return "", hlsPlaylist{}, fmt.Errorf("%s: %w", name, err)
	}
	return file, pl, nil
}

// writeAtomically replaces file with data through a temporary file beside
// it, so a reader never sees half of it.
func writeAtomically(file string, data []byte) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
