package backfill

import (
	"path"
	"strings"
)

// checkGlob returns why g is not a usable pattern, or "".
func checkGlob(g string) string {
	if g == "" || len(g) > 256 {
		return "must be 1 to 256 characters"
	}
	if _, err := path.Match(g, ""); err != nil {
		return "is not a valid glob (path.Match syntax: * ? [a-z])"
	}
	return ""
}

// globMatch reports whether key (relative to the listed prefix) matches g. A
// pattern without "/" matches the object's base name ("*.mp4"); one with "/"
// matches the whole relative key ("2019/*/*.mov").
func globMatch(g, rel string) bool {
	target := rel
	if !strings.Contains(g, "/") {
		target = path.Base(rel)
	}
	ok, _ := path.Match(g, target) // validated by checkGlob
	return ok
}

// Filter decides which listed keys become inputs: any include pattern (all
// keys when there is none) and no exclude pattern.
type Filter struct {
	Prefix           string
	Include, Exclude []string
}

// Match reports whether key passes the filter.
func (f Filter) Match(key string) bool {
	rel := strings.TrimPrefix(key, f.Prefix)
	if len(f.Include) > 0 {
		in := false
		for _, g := range f.Include {
			if globMatch(g, rel) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	for _, g := range f.Exclude {
		if globMatch(g, rel) {
			return false
		}
	}
	return true
}
