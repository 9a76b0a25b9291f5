package ffmpeg

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// hlsPlaylist is the part of an HLS playlist (media or master) that the
// master writer and Verify use.
type hlsPlaylist struct {
	targetDuration float64
	mapURI         string            // EXT-X-MAP URI, as written
	mapKey         map[string]string // EXT-X-KEY in effect at the EXT-X-MAP; nil: clear
	segments       []hlsSegment      // media playlist entries in order
	variants       []hlsVariant      // master playlist EXT-X-STREAM-INF entries
	media          []map[string]string
}

type hlsSegment struct {
	uri      string
	duration float64
	key      map[string]string // EXT-X-KEY attributes in effect; nil: clear
}

type hlsVariant struct {
	attrs map[string]string
	uri   string
}

// parseM3U8 reads the tags of an HLS playlist that this package writes or
// checks; other tags are skipped.
func parseM3U8(data []byte) (hlsPlaylist, error) {
	var pl hlsPlaylist
	sc := bufio.NewScanner(bytes.NewReader(data))
	first := true
	var pendingDuration float64
	var pendingVariant map[string]string
	var key map[string]string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if first {
			if line != "#EXTM3U" {
				return pl, fmt.Errorf("not an HLS playlist: first line is %q, want #EXTM3U", line)
			}
			first = false
			continue
		}
		tag, value, _ := strings.Cut(line, ":")
		switch {
		case tag == "#EXT-X-TARGETDURATION":
			pl.targetDuration, _ = strconv.ParseFloat(value, 64)
		case tag == "#EXT-X-KEY":
			if key = parseAttributes(value); key["METHOD"] == "NONE" {
				key = nil
			}
		case tag == "#EXT-X-MAP":
			pl.mapURI, pl.mapKey = parseAttributes(value)["URI"], key
		case tag == "#EXTINF":
			d, _, _ := strings.Cut(value, ",")
			pendingDuration, _ = strconv.ParseFloat(d, 64)
		case tag == "#EXT-X-STREAM-INF":
			pendingVariant = parseAttributes(value)
		case tag == "#EXT-X-MEDIA":
			pl.media = append(pl.media, parseAttributes(value))
		case strings.HasPrefix(line, "#"):
		case pendingVariant != nil:
			pl.variants = append(pl.variants, hlsVariant{attrs: pendingVariant, uri: line})
			pendingVariant = nil
		default:
			pl.segments = append(pl.segments, hlsSegment{uri: line, duration: pendingDuration, key: key})
			pendingDuration = 0
		}
	}
	if err := sc.Err(); err != nil {
		return pl, fmt.Errorf("read playlist: %w", err)
	}
	if first {
		return pl, fmt.Errorf("empty playlist")
	}
	return pl, nil
}

// parseAttributes splits an HLS attribute list (KEY=VALUE,KEY="VALUE,...").
func parseAttributes(s string) map[string]string {
	attrs := make(map[string]string)
	for s != "" {
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				val, rest = rest[1:], ""
			} else {
				val, rest = rest[1:end+1], rest[end+2:]
			}
			rest = strings.TrimPrefix(rest, ",")
		} else {
			val, rest, _ = strings.Cut(rest, ",")
		}
		attrs[strings.TrimSpace(key)] = val
		s = rest
	}
	return attrs
}

// resolveRef resolves a playlist or manifest reference against the
// directory of the file that holds it. Only relative references inside the
// output directory resolve; absolute paths and URLs do not.
func resolveRef(from, ref string) (string, error) {
	if ref == "" || strings.Contains(ref, "://") || strings.HasPrefix(ref, "/") || strings.ContainsAny(ref, "?#\\") {
		return "", fmt.Errorf("reference %q is not a relative path", ref)
	}
	p := path.Join(path.Dir(from), ref)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("reference %q points outside the output directory", ref)
	}
	return p, nil
}

// mpd is the part of a DASH MPD that Verify uses.
type mpd struct {
	Duration string `xml:"mediaPresentationDuration,attr"`
	Periods  []struct {
		AdaptationSets []struct {
			ContentType     string           `xml:"contentType,attr"`
			SegmentTemplate *segmentTemplate `xml:"SegmentTemplate"`
			Representations []struct {
				ID              string           `xml:"id,attr"`
				MimeType        string           `xml:"mimeType,attr"`
				Width           int              `xml:"width,attr"`
				Height          int              `xml:"height,attr"`
				SegmentTemplate *segmentTemplate `xml:"SegmentTemplate"`
				BaseURL         string           `xml:"BaseURL"`
			} `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
}

type segmentTemplate struct {
	Initialization string `xml:"initialization,attr"`
	Media          string `xml:"media,attr"`
	StartNumber    *int   `xml:"startNumber,attr"`
	Timeline       []struct {
		T *int64 `xml:"t,attr"`
		D int64  `xml:"d,attr"`
		R int    `xml:"r,attr"`
	} `xml:"SegmentTimeline>S"`
}

// dashTrack is one representation's files in playback order: an init
// segment and media segments, or one file (a text track's BaseURL).
type dashTrack struct {
	id       string
	init     string
	segments []string
	file     string
}

// parseMPD lists each representation's init and media segment names from
// a static MPD with SegmentTemplate and SegmentTimeline, the form the DASH
// muxer writes with use_template and use_timeline.
func parseMPD(data []byte) ([]dashTrack, error) {
	var m mpd
	if err := xml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse MPD: %w", err)
	}
	var tracks []dashTrack
	for _, period := range m.Periods {
		for _, set := range period.AdaptationSets {
			for _, rep := range set.Representations {
				tmpl := rep.SegmentTemplate
				if tmpl == nil {
					tmpl = set.SegmentTemplate
				}
				if tmpl == nil && rep.BaseURL != "" {
					tracks = append(tracks, dashTrack{id: rep.ID, file: strings.TrimSpace(rep.BaseURL)})
					continue
				}
				if tmpl == nil {
					return nil, fmt.Errorf("representation %q has no SegmentTemplate", rep.ID)
				}
				t := dashTrack{id: rep.ID}
				var err error
				if t.init, err = expandTemplate(tmpl.Initialization, rep.ID, 0, 0); err != nil {
					return nil, err
				}
				number := 1
				if tmpl.StartNumber != nil {
					number = *tmpl.StartNumber
				}
				var at int64
				for _, s := range tmpl.Timeline {
					if s.T != nil {
						at = *s.T
					}
					if s.R < 0 {
						return nil, fmt.Errorf("representation %q: open-ended segment repeat in a static MPD", rep.ID)
					}
					for range s.R + 1 {
						name, err := expandTemplate(tmpl.Media, rep.ID, number, at)
						if err != nil {
							return nil, err
						}
						t.segments = append(t.segments, name)
						number++
						at += s.D
					}
				}
				tracks = append(tracks, t)
			}
		}
	}
	return tracks, nil
}

// expandTemplate fills the DASH template identifiers $RepresentationID$,
// $Number$, $Time$ (with optional %0Nd widths) and $$.
func expandTemplate(tmpl, id string, number int, at int64) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '$')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String(), nil
		}
		b.WriteString(tmpl[:i])
		rest := tmpl[i+1:]
		j := strings.IndexByte(rest, '$')
		if j < 0 {
			return "", fmt.Errorf("template %q: unterminated identifier", tmpl)
		}
		ident, format, _ := strings.Cut(rest[:j], "%")
		var v int64
		switch ident {
		case "":
			b.WriteByte('$')
		case "RepresentationID":
			b.WriteString(id)
		case "Number", "Time":
			v = int64(number)
			if ident == "Time" {
				v = at
			}
			width := 0
			if format != "" {
				w, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(format, "0"), "d"))
				if err != nil {
					return "", fmt.Errorf("template %q: bad format %%%s", tmpl, format)
				}
				width = w
			}
			fmt.Fprintf(&b, "%0*d", width, v)
		default:
			return "", fmt.Errorf("template %q: unsupported identifier $%s$", tmpl, ident)
		}
		tmpl = rest[j+1:]
	}
}
