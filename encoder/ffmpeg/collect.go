package ffmpeg

import (
	"fmt"
	"image/jpeg"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Collect lists every file under cmd.OutDir as an Output, sorted by name:
// the expected outputs as planned, and the media segments and thumbnails
// found on disk or listed in cmd.Remote, each attributed to its rendition (DASH segments through
// the stream index in their names). A file the plan cannot account for is
// an error, so nothing unexpected is uploaded.
func Collect(cmd Command) ([]Output, error) {
	expected := make(map[string]Output, len(cmd.ExpectedOutputs))
	var families []segmentFamily
	for _, o := range cmd.ExpectedOutputs {
		expected[o.Name] = o
		if f, ok := familyOf(o); ok {
			families = append(families, f)
		}
	}

	var outputs []Output
	err := filepath.WalkDir(cmd.OutDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		rel, err := filepath.Rel(cmd.OutDir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if o, ok := expected[name]; ok {
			outputs = append(outputs, o)
			return nil
		}
		o, err := classify(cmd.OutDir, name, families)
		if err != nil {
			return err
		}
		outputs = append(outputs, o)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("collect outputs: %w", err)
	}
	// Segments already at their final keys are outputs all the same.
	for _, name := range slices.Sorted(maps.Keys(cmd.Remote)) {
		if _, err := os.Lstat(filepath.Join(cmd.OutDir, filepath.FromSlash(name))); err == nil {
			continue // also here: counted by the walk
		}
		o, err := classify(cmd.OutDir, name, families)
		if err != nil {
			return nil, fmt.Errorf("collect outputs: %w", err)
		}
		outputs = append(outputs, o)
	}
	slices.SortFunc(outputs, func(a, b Output) int { return strings.Compare(a.Name, b.Name) })
	return outputs, nil
}

// segmentFamily matches the media segments that belong to an init segment:
// HLS "<dir>/init.mp4" owns "<dir>/seg_*.m4s", DASH "init_<i>.m4s" owns
// "seg_<i>_*.m4s".
type segmentFamily struct {
	dir, prefix string
	init        Output
}

func familyOf(o Output) (segmentFamily, bool) {
	if o.Kind != KindVideo && o.Kind != KindAudio {
		return segmentFamily{}, false
	}
	dir, base := path.Split(o.Name)
	switch {
	case base == "init.mp4":
		return segmentFamily{dir: dir, prefix: "seg_", init: o}, true
	case strings.HasPrefix(base, "init_") && strings.HasSuffix(base, ".m4s"):
		idx := strings.TrimSuffix(strings.TrimPrefix(base, "init_"), ".m4s")
		return segmentFamily{dir: dir, prefix: "seg_" + idx + "_", init: o}, true
	}
	return segmentFamily{}, false
}

func classify(outDir, name string, families []segmentFamily) (Output, error) {
	dir, base := path.Split(name)
	switch path.Ext(name) {
	case ".m4s":
		for _, f := range families {
			if f.dir == dir && strings.HasPrefix(base, f.prefix) {
				return Output{
					Name: name, Kind: f.init.Kind, ContentType: ContentTypeSegment,
					Rendition: f.init.Rendition, Width: f.init.Width, Height: f.init.Height, Codec: f.init.Codec,
				}, nil
			}
		}
	case ".jpg":
		if dir == thumbsDir+"/" && strings.HasPrefix(base, "thumb_") {
			w, h, err := jpegSize(filepath.Join(outDir, filepath.FromSlash(name)))
			if err != nil {
				return Output{}, err
			}
			return Output{Name: name, Kind: KindThumbnail, ContentType: ContentTypeJPEG, Width: w, Height: h}, nil
		}
	}
	return Output{}, fmt.Errorf("unexpected file %s in the output directory", name)
}

func jpegSize(file string) (int, int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close() //nolint:errcheck // opened read-only: closing loses nothing
	cfg, err := jpeg.DecodeConfig(f)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", filepath.Base(file), err)
	}
	return cfg.Width, cfg.Height, nil
}
