// Package caption holds the rules for caption files given with a job
// (sidecars): which formats, how many, how large, and which language tags.
// The API applies them when a job is submitted and the encoder applies them
// again before it converts a file, so a row changed behind the API gets no
// further than a submission would.
package caption

import (
	"fmt"
	"regexp"

	"golang.org/x/text/language"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// Sidecar formats.
const (
	FormatSRT = "srt" // SubRip
	FormatVTT = "vtt" // WebVTT
)

// Formats are the sidecar formats the encoder converts to WebVTT.
var Formats = []string{FormatSRT, FormatVTT}

const (
	// MaxPerJob bounds the caption files of one job. Together with the
	// input's own subtitle streams a job converts at most 16 tracks.
	MaxPerJob = 8
	// MaxBytes bounds one caption file as downloaded: a feature film's
	// SubRip file is about 100 KB.
	MaxBytes = 4 << 20
)

// tagShape is what a canonical language tag may look like: it becomes a
// file name (subtitles/<tag>.vtt) and a manifest attribute.
var tagShape = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,4}$`)

// Language returns tag in canonical BCP 47 form ("pt-BR", "fr"), or why
// it cannot name a caption track: not well formed, longer than 35
// characters, or "und" (a sidecar is given for a language).
func Language(tag string) (string, error) {
	if len(tag) == 0 || len(tag) > 35 {
		return "", fmt.Errorf("must be a BCP 47 language tag such as fr or pt-BR, of at most 35 characters")
	}
	t, err := language.Parse(tag)
	if err != nil {
		return "", fmt.Errorf("must be a BCP 47 language tag such as fr or pt-BR, got %q", tag)
	}
	if t == language.Und {
		return "", fmt.Errorf("must name a language, not und")
	}
	s := t.String()
	if !tagShape.MatchString(s) {
		return "", fmt.Errorf("must be a plain BCP 47 language tag such as fr or pt-BR (language, script, region), got %q", tag)
	}
	return s, nil
}

// Sidecar is one caption file as a job names it; URL is checked by the
// caller (it is a storage reference of the job's organization or a public
// https URL).
type Sidecar struct {
	URL      string
	Language string
	Format   string
}

// Check validates sidecars (field paths under path, e.g. "captions") and
// returns their languages in canonical form, in order: the count, each
// format, each language, and no language twice.
func Check(sidecars []Sidecar, path string) ([]string, validation.Errors) {
	var errs validation.Errors
	if len(sidecars) > MaxPerJob {
		errs.Add(path, "at most %d caption files, got %d", MaxPerJob, len(sidecars))
		return nil, errs
	}
	langs := make([]string, len(sidecars))
	seen := map[string]int{}
	for i, s := range sidecars {
		field := fmt.Sprintf("%s[%d]", path, i)
		if s.Format != FormatSRT && s.Format != FormatVTT {
			errs.Add(field+".format", "must be %s or %s, got %q", FormatSRT, FormatVTT, s.Format)
		}
		if s.URL == "" {
			errs.Add(field+".url", "is required")
		}
		lang, err := Language(s.Language)
		if err != nil {
			errs.Add(field+".language", "%s", err.Error())
			continue
		}
		if j, dup := seen[lang]; dup {
			errs.Add(field+".language", "%s is also the language of %s[%d]: give one file per language", lang, path, j)
			continue
		}
		seen[lang] = i
		langs[i] = lang
	}
	return langs, errs
}
