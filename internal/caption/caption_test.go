package caption

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLanguage(t *testing.T) {
	t.Parallel()
	for tag, want := range map[string]string{
		"fr": "fr", "FR": "fr", "pt-br": "pt-BR", "zh-Hant-TW": "zh-Hant-TW", "fra": "fr", "iw": "he",
	} {
		got, err := Language(tag)
		require.NoError(t, err, tag)
		assert.Equal(t, want, got, tag)
	}
	for _, tag := range []string{"", "und", "x-private", "fr/../x", "fr fr", "not a language", "fr\x00", strings.Repeat("a", 36), "123"} {
		_, err := Language(tag)
		assert.Error(t, err, "%q", tag)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	ok := Sidecar{URL: "s3://b/k.srt", Language: "fr", Format: FormatSRT}
	for name, tt := range map[string]struct {
		in     []Sidecar
		fields []string
		langs  []string
	}{
		"none":          {},
		"two languages": {in: []Sidecar{ok, {URL: "u", Language: "pt-br", Format: FormatVTT}}, langs: []string{"fr", "pt-BR"}},
		"unknown format": {in: []Sidecar{{URL: "u", Language: "fr", Format: "ass"}}, fields: []string{"captions[0].format"},
			langs: []string{"fr"}},
		"no url":       {in: []Sidecar{{Language: "fr", Format: FormatVTT}}, fields: []string{"captions[0].url"}, langs: []string{"fr"}},
		"bad language": {in: []Sidecar{ok, {URL: "u", Language: "../x", Format: FormatVTT}}, fields: []string{"captions[1].language"}, langs: []string{"fr", ""}},
		"same language twice, spelt differently": {in: []Sidecar{ok, {URL: "u", Language: "fra", Format: FormatVTT}},
			fields: []string{"captions[1].language"}, langs: []string{"fr", ""}},
		"too many": {in: make([]Sidecar, MaxPerJob+1), fields: []string{"captions"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			langs, errs := Check(tt.in, "captions")
			var fields []string
			for _, e := range errs {
				fields = append(fields, e.Field)
			}
			assert.Equal(t, tt.fields, fields, "%v", errs)
			if tt.langs != nil {
				assert.Equal(t, tt.langs, langs)
			}
		})
	}
}
