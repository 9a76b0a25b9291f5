package backfill

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mpegflow/mpegflow/internal/objscope"
)

// Objects is the object storage a walk reads: listing for prefixes, ranged
// reads for manifests (so a resumed walk starts at its byte offset).
type Objects interface {
	ListPage(ctx context.Context, bucket, prefix, startAfter string, max int) (keys []string, more bool, err error)
	// OpenFrom reads key from offset on, only its version etag when that
	// is not "" (else objstore.ErrChanged), and says the ETag it opened.
	OpenFrom(ctx context.Context, key string, offset int64, etag string) (io.ReadCloser, string, error)
}

// Cursor is how far a walk got: the last listed key of a prefix, or the
// last manifest line and the byte offset after it. A batch persists it with
// each committed chunk.
type Cursor struct {
	Key    string
	Line   int64
	Offset int64
}

// LineError is a malformed manifest line.
type LineError struct {
	Line   int64  `json:"line"`
	Detail string `json:"detail"`
}

// Chunk is a run of inputs and the cursor just after them.
type Chunk struct {
	Inputs []string
	Errors []LineError
	Cursor Cursor
}

// Plan is a validated source, ready to walk.
type Plan struct {
	Kind        string
	Scope       Scope
	Filter      Filter // prefix sources
	Bucket      string // prefix sources
	ManifestKey string // manifest sources: the asset's object key
	// ManifestETag, when set, is the only version of the manifest a walk
	// reads (a batch's, as its submission counted it): another is
	// objstore.ErrChanged.
	ManifestETag string
	Format       string
}

// pageSize is how many keys one ListObjectsV2 call asks for (S3's maximum).
const pageSize = 1000

// maxLine bounds a manifest line; longer lines are malformed.
const maxLine = 8192

// ErrSourceTooLarge means a source holds more than a batch may read
// (MaxEntries lines or keys, inputs or not, or a manifest of more than
// MaxManifestBytes).
var ErrSourceTooLarge = errors.New("the source is larger than a batch may read")

// Walk reads the source after cur and calls fn with chunks of about size
// inputs (never more). It holds at most one chunk in memory.
func (p Plan) Walk(ctx context.Context, objs Objects, cur Cursor, size int, fn func(Chunk) error) error {
	_, err := p.walk(ctx, objs, cur, size, readLimit{}, fn)
	return err
}

// readLimit bounds what one walk reads, inputs or not: manifest lines or
// listed keys (entries) and manifest bytes; zero is no bound.
type readLimit struct{ entries, bytes int64 }

// scanLimit is what submitting a batch reads of its source at most.
var scanLimit = readLimit{entries: MaxEntries, bytes: MaxManifestBytes}

// walk is Walk stopping with ErrSourceTooLarge once it read more than lim.
// Without a bound a manifest of blank lines, or a prefix whose filter
// matches nothing, would be read to its end, however large. For a
// manifest it returns the ETag of the version it read.
func (p Plan) walk(ctx context.Context, objs Objects, cur Cursor, size int, lim readLimit, fn func(Chunk) error) (etag string, err error) {
	if p.Kind == KindManifest {
		return p.walkManifest(ctx, objs, cur, size, lim, fn)
	}
	return "", p.walkPrefix(ctx, objs, cur, size, lim, fn)
}

func (p Plan) walkPrefix(ctx context.Context, objs Objects, cur Cursor, size int, lim readLimit, fn func(Chunk) error) error {
	ch := Chunk{Cursor: cur}
	var listed int64
	for {
		keys, more, err := objs.ListPage(ctx, p.Bucket, p.Filter.Prefix, ch.Cursor.Key, min(pageSize, max(size, 1)))
		if err != nil {
			return err
		}
		if listed += int64(len(keys)); lim.entries > 0 && listed > lim.entries {
			return fmt.Errorf("prefix %s: more than %d objects: %w", p.Filter.Prefix, lim.entries, ErrSourceTooLarge)
		}
		for _, k := range keys {
			if p.Filter.Match(k) {
				ch.Inputs = append(ch.Inputs, objscope.Ref{Bucket: p.Bucket, Key: k}.URL())
			}
			ch.Cursor.Key = k
		}
		if len(ch.Inputs) >= size || (!more && len(ch.Inputs) > 0) {
			if err := fn(ch); err != nil {
				return err
			}
			ch = Chunk{Cursor: ch.Cursor}
		}
		if !more || len(keys) == 0 {
			return nil
		}
	}
}

func (p Plan) walkManifest(ctx context.Context, objs Objects, cur Cursor, size int, lim readLimit, fn func(Chunk) error) (string, error) {
	body, etag, err := objs.OpenFrom(ctx, p.ManifestKey, cur.Offset, p.ManifestETag)
	if err != nil {
		return "", err
	}
	defer body.Close()
	var in io.Reader = body
	if lim.bytes > 0 {
		// One byte past the bound is enough to refuse, even inside a line
		// that never ends.
		in = io.LimitReader(body, lim.bytes+1)
	}
	r := bufio.NewReaderSize(in, 64<<10)
	ch := Chunk{Cursor: cur}
	for {
		line, n, long, rerr := readLine(r)
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return etag, fmt.Errorf("read manifest %s at byte %d: %w", p.ManifestKey, ch.Cursor.Offset, rerr)
		}
		if n > 0 {
			ch.Cursor.Line++
			ch.Cursor.Offset += int64(n)
			if (lim.entries > 0 && ch.Cursor.Line-cur.Line > lim.entries) || (lim.bytes > 0 && ch.Cursor.Offset-cur.Offset > lim.bytes) {
				return etag, fmt.Errorf("manifest %s: more than %d lines or %d bytes: %w", p.ManifestKey, lim.entries, lim.bytes, ErrSourceTooLarge)
			}
			input, detail := p.parseLine(line, ch.Cursor.Line, long)
			switch {
			case detail != "":
				ch.Errors = append(ch.Errors, LineError{Line: ch.Cursor.Line, Detail: detail})
			case input != "":
				ch.Inputs = append(ch.Inputs, input)
			}
		}
		eof := errors.Is(rerr, io.EOF)
		if len(ch.Inputs) >= size || (eof && (len(ch.Inputs) > 0 || len(ch.Errors) > 0)) || len(ch.Errors) >= size {
			if err := fn(ch); err != nil {
				return etag, err
			}
			ch = Chunk{Cursor: ch.Cursor}
		}
		if eof {
			return etag, nil
		}
	}
}

// readLine returns the next line without its terminator (at most maxLine
// bytes of it), how many bytes it took with the terminator, and whether it
// was longer than maxLine.
func readLine(r *bufio.Reader) (line []byte, n int, long bool, err error) {
	for {
		frag, ferr := r.ReadSlice('\n')
		n += len(frag)
		if room := maxLine + 2 - len(line); room > 0 {
			line = append(line, frag[:min(len(frag), room)]...)
		}
		if errors.Is(ferr, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > maxLine {
			return line[:maxLine], n, true, ferr
		}
		return line, n, false, ferr
	}
}

// parseLine returns the line's normalized input, "" for a blank line or a
// CSV header, or why the line is malformed.
func (p Plan) parseLine(line []byte, no int64, tooLong bool) (string, string) {
	if tooLong {
		return "", fmt.Sprintf("line longer than %d bytes", maxLine)
	}
	text := strings.TrimSpace(string(line))
	if text == "" {
		return "", ""
	}
	var raw string
	switch p.Format {
	case FormatCSV:
		rec, err := csv.NewReader(strings.NewReader(text)).Read()
		if err != nil || len(rec) == 0 {
			return "", "not a CSV record"
		}
		raw = rec[0]
		if no == 1 && strings.EqualFold(strings.TrimSpace(raw), "input") {
			return "", "" // header
		}
	default:
		if strings.HasPrefix(text, `"`) {
			if err := json.Unmarshal([]byte(text), &raw); err != nil {
				return "", "not a JSON string or object"
			}
			break
		}
		var obj struct {
			Input *string `json:"input"`
		}
		if err := json.Unmarshal([]byte(text), &obj); err != nil {
			return "", "not a JSON object: want {\"input\": \"s3://bucket/key\"}"
		}
		if obj.Input == nil {
			return "", "no \"input\" field"
		}
		raw = *obj.Input
	}
	return p.Scope.CheckInput(raw)
}
