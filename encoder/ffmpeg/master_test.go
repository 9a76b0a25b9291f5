package ffmpeg

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestHLSQuoteKeepsAttributesApart: a title taken from the input's tags,
// with quotes, commas, "=" and line breaks, stays one NAME: the line reads
// back with the URI it was written with.
func TestHLSQuoteKeepsAttributesApart(t *testing.T) {
	t.Parallel()
	for _, title := range []string{`a",URI="evil.m3u8`, "line\nbreak\r\"x\"", `Commentary, director's cut`, "Français – 日本語"} {
		line := "TYPE=AUDIO,NAME=" + hlsQuote(title) + `,URI="audio-0.m3u8"`
		attrs := parseAttributes(line)
		assert.Equal(t, "audio-0.m3u8", attrs["URI"], "%q", title)
		assert.ElementsMatch(t, []string{"TYPE", "NAME", "URI"}, slices.Collect(maps.Keys(attrs)), "%q", title)
		assert.NotContains(t, attrs["NAME"], `\`, "no escapes: HLS has none")
		assert.NotContains(t, attrs["NAME"], `"`)
		assert.NotContains(t, attrs["NAME"], "\n")
		if !strings.ContainsAny(title, "\"\r\n") {
			assert.Equal(t, title, attrs["NAME"], "a title with nothing to drop is kept as it is")
		}
	}
}
