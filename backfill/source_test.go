package backfill

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/objscope"
)

var (
	orgA  = uuid.MustParse("0192f000-0000-7000-8000-00000000000a")
	orgB  = uuid.MustParse("0192f000-0000-7000-8000-00000000000b")
	scope = Scope{Objects: objscope.Scope{OrgID: orgA, Storage: objscope.Storage{Bucket: "media", Endpoint: "https://s3.example.net"}}}
	root  = "orgs/" + orgA.String() + "/"
)

func TestFilterMatch(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		include, exclude []string
		key              string
		want             bool
	}{
		"no patterns":               {nil, nil, "lib/a.mxf", true},
		"base name glob":            {[]string{"*.mxf"}, nil, "lib/2019/a.mxf", true},
		"base name glob miss":       {[]string{"*.mxf"}, nil, "lib/2019/a.mov", false},
		"path glob":                 {[]string{"2019/*/*.mov"}, nil, "lib/2019/jan/a.mov", true},
		"path glob wrong depth":     {[]string{"2019/*/*.mov"}, nil, "lib/2019/a.mov", false},
		"exclude wins":              {[]string{"*.mxf"}, []string{"proxy-*"}, "lib/proxy-a.mxf", false},
		"any include":               {[]string{"*.mov", "*.mxf"}, nil, "lib/a.mxf", true},
		"exclude only":              {nil, []string{"*.txt"}, "lib/notes.txt", false},
		"character class":           {[]string{"[ab].mxf"}, nil, "lib/c.mxf", false},
		"star does not cross slash": {[]string{"*/a.mxf"}, nil, "lib/x/y/a.mxf", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := Filter{Prefix: "lib/", Include: tc.include, Exclude: tc.exclude}
			assert.Equal(t, tc.want, f.Match(tc.key))
		})
	}
}

func TestScopeCheckPrefix(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		raw, prefix string
		ok          bool
	}{
		"own root":         {"s3://media/" + root, root, true},
		"under own root":   {"s3://media/" + root + "archive/", root + "archive/", true},
		"another org":      {"s3://media/orgs/" + orgB.String() + "/", "", false},
		"org id as prefix": {"s3://media/orgs/" + orgA.String() + "x/", "", false},
		"bucket root":      {"s3://media/", "", false},
		"another bucket":   {"s3://other/" + root, "", false},
		"https":            {"https://media/" + root, "", false},
		"query":            {"s3://media/" + root + "?x=1", "", false},
		"dot-dot":          {"s3://media/" + root + "../" + orgB.String() + "/", "", false},
		"encoded dot-dot":  {"s3://media/" + root + "%2e%2e/" + orgB.String() + "/", "", false},
		"encoded slash":    {"s3://media/" + root + "..%2F" + orgB.String() + "/", "", false},
		"empty segment":    {"s3://media/" + root + "a//", "", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bucket, prefix, detail := scope.CheckPrefix(tc.raw)
			if !tc.ok {
				assert.NotEmpty(t, detail)
				return
			}
			assert.Empty(t, detail)
			assert.Equal(t, "media", bucket)
			assert.Equal(t, tc.prefix, prefix)
		})
	}
}

func TestScopeCheckInput(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		raw, want string
	}{
		"own object":                         {"s3://media/" + root + "a.mxf", "s3://media/" + root + "a.mxf"},
		"space is escaped":                   {"s3://media/" + root + "a%20b.mxf", "s3://media/" + root + "a%20b.mxf"},
		"https":                              {"https://cdn.example.com/a.mxf", "https://cdn.example.com/a.mxf"},
		"another org":                        {"s3://media/orgs/" + orgB.String() + "/a.mxf", ""},
		"the root itself":                    {"s3://media/" + root, ""},
		"http in production":                 {"http://cdn.example.com/a.mxf", ""},
		"credentials":                        {"https://u:p@cdn.example.com/a.mxf", ""},
		"ftp":                                {"ftp://cdn.example.com/a.mxf", ""},
		"relative":                           {"a.mxf", ""},
		"dot-dot":                            {"s3://media/" + root + "../" + orgB.String() + "/a.mxf", ""},
		"encoded dot-dot":                    {"s3://media/" + root + "%2E%2E/" + orgB.String() + "/a.mxf", ""},
		"encoded slash":                      {"s3://media/orgs%2F" + orgB.String() + "%2Fa.mxf", ""},
		"backslash":                          {`s3://media/` + root + `..\` + orgB.String() + `\a.mxf`, ""},
		"storage endpoint":                   {"https://s3.example.net/media/orgs/" + orgB.String() + "/a.mxf", ""},
		"own object by the storage endpoint": {"https://media.s3.example.net/" + root + "a.mxf", "s3://media/" + root + "a.mxf"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, detail := scope.CheckInput(tc.raw)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.want == "", detail != "", "detail %q", detail)
		})
	}
}

// memObjects is an in-memory manifest and listing, for the pure walk logic
// (the expander's integration tests use real S3).
type memObjects struct {
	manifest string
	keys     []string
}

func (m memObjects) ListPage(_ context.Context, _, prefix, after string, limit int) ([]string, bool, error) {
	var out []string
	for _, k := range m.keys {
		if strings.HasPrefix(k, prefix) && k > after {
			out = append(out, k)
		}
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

func (m memObjects) OpenFrom(_ context.Context, _ string, offset int64, _ string) (io.ReadCloser, string, error) {
	return io.NopCloser(strings.NewReader(m.manifest[offset:])), "", nil
}

// TestWalkManifestResumesAtCursor: every chunk's cursor, used as a start,
// yields exactly the inputs after it, with line numbers kept.
func TestWalkManifestResumesAtCursor(t *testing.T) {
	t.Parallel()
	in := func(n string) string { return "s3://media/" + root + n }
	manifest := `{"input":"` + in("a") + `"}` + "\n" +
		"oops\r\n" +
		"\n" +
		`"` + in("b") + `"` + "\n" +
		`{"input":"` + in("c") + `"}` + "\n" +
		strings.Repeat("x", maxLine+5) + "\n" +
		`{"input":"` + in("d") + `"}`
	p := Plan{Kind: KindManifest, Scope: scope, Format: FormatJSONL}
	objs := memObjects{manifest: manifest}
	var chunks []Chunk
	require.NoError(t, p.Walk(t.Context(), objs, Cursor{}, 2, func(ch Chunk) error { chunks = append(chunks, ch); return nil }))
	var all []string
	var bad []int64
	for _, ch := range chunks {
		all = append(all, ch.Inputs...)
		for _, e := range ch.Errors {
			bad = append(bad, e.Line)
		}
	}
	assert.Equal(t, []string{in("a"), in("b"), in("c"), in("d")}, all)
	assert.Equal(t, []int64{2, 6}, bad)
	last := chunks[len(chunks)-1].Cursor
	assert.Equal(t, int64(7), last.Line)
	assert.Equal(t, int64(len(manifest)), last.Offset)

	for i, ch := range chunks[:len(chunks)-1] {
		var rest []string
		require.NoError(t, p.Walk(t.Context(), objs, ch.Cursor, 100, func(c Chunk) error { rest = append(rest, c.Inputs...); return nil }))
		var want []string
		for _, later := range chunks[i+1:] {
			want = append(want, later.Inputs...)
		}
		assert.Equal(t, want, rest, "resuming after chunk %d", i)
	}
}

func TestWalkPrefixPagesAndFilters(t *testing.T) {
	t.Parallel()
	var keys []string
	for _, k := range []string{"a.mxf", "b.txt", "c.mxf", "d/", "e.mxf"} {
		keys = append(keys, root+"lib/"+k)
	}
	p := Plan{Kind: KindPrefix, Scope: scope, Bucket: "media", Filter: Filter{Prefix: root + "lib/", Include: []string{"*.mxf"}}}
	var chunks []Chunk
	require.NoError(t, p.Walk(t.Context(), memObjects{keys: keys}, Cursor{}, 1, func(ch Chunk) error { chunks = append(chunks, ch); return nil }))
	var got []string
	for _, ch := range chunks {
		got = append(got, ch.Inputs...)
	}
	assert.Equal(t, []string{"s3://media/" + root + "lib/a.mxf", "s3://media/" + root + "lib/c.mxf", "s3://media/" + root + "lib/e.mxf"}, got)
	assert.Equal(t, root+"lib/e.mxf", chunks[len(chunks)-1].Cursor.Key)
}

func TestScopeCheckInputRefusesNonPublicAddresses(t *testing.T) {
	t.Parallel()
	guarded := scope
	guarded.Guard = netguard.New(netguard.Config{})
	allowing := scope
	allowing.Guard = netguard.New(netguard.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	cases := map[string]struct {
		scope   Scope
		raw     string
		refused bool
	}{
		"loopback":                 {guarded, "https://127.0.0.1/a.mxf", true},
		"cloud metadata":           {guarded, "https://169.254.169.254/latest/meta-data", true},
		"private":                  {guarded, "https://10.0.0.5/a.mxf", true},
		"IPv6 loopback":            {guarded, "https://[::1]/a.mxf", true},
		"IPv4-mapped loopback":     {guarded, "https://[::ffff:127.0.0.1]/a.mxf", true},
		"localhost name":           {guarded, "https://localhost/a.mxf", true},
		"public address":           {guarded, "https://8.8.8.8/a.mxf", false},
		"name (checked at dial)":   {guarded, "https://cdn.example.com/a.mxf", false},
		"allowlisted loopback":     {allowing, "https://127.0.0.1/a.mxf", false},
		"outside the allowlist":    {allowing, "https://10.0.0.5/a.mxf", true},
		"own object needs no host": {guarded, "s3://media/" + root + "a.mxf", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, detail := tc.scope.CheckInput(tc.raw)
			if tc.refused {
				assert.Empty(t, got)
				assert.Contains(t, detail, "refused")
				return
			}
			assert.NotEmpty(t, got)
			assert.Empty(t, detail)
		})
	}
}

// TestWalkStopsPastItsReadLimit: a manifest of blank lines, one of long
// malformed lines, or a prefix whose filter matches no key is read only
// up to the limit, inputs or not, and then refused; within it, the walk
// reads to the end.
func TestWalkStopsPastItsReadLimit(t *testing.T) {
	t.Parallel()
	manifest := Plan{Kind: KindManifest, Scope: scope, Format: FormatJSONL}
	var keys []string
	for i := range 25 {
		keys = append(keys, fmt.Sprintf("%slib/%02d.txt", root, i))
	}
	prefix := Plan{Kind: KindPrefix, Scope: scope, Bucket: "media", Filter: Filter{Prefix: root + "lib/", Include: []string{"*.mxf"}}}
	for name, tc := range map[string]struct {
		plan  Plan
		objs  Objects
		lim   readLimit
		large bool
	}{
		"blank lines past the entries":       {manifest, memObjects{manifest: strings.Repeat("\n", 11)}, readLimit{entries: 10}, true},
		"blank lines within the entries":     {manifest, memObjects{manifest: strings.Repeat("\n", 10)}, readLimit{entries: 10}, false},
		"long lines past the bytes":          {manifest, memObjects{manifest: strings.Repeat(strings.Repeat("x", 100)+"\n", 3)}, readLimit{entries: 10, bytes: 250}, true},
		"one line that never ends":           {manifest, endless{}, readLimit{entries: 10, bytes: 1 << 20}, true},
		"keys filtered out past the entries": {prefix, memObjects{keys: keys}, readLimit{entries: 20}, true},
		"keys filtered out within them":      {prefix, memObjects{keys: keys}, readLimit{entries: 25}, false},
		"no limit":                           {manifest, memObjects{manifest: strings.Repeat("\n", 100)}, readLimit{}, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := tc.plan.walk(t.Context(), tc.objs, Cursor{}, 7, tc.lim, func(Chunk) error { return nil })
			if tc.large {
				require.ErrorIs(t, err, ErrSourceTooLarge)
			} else {
				require.NoError(t, err)
			}
		})
	}
}

// endless is a manifest of one line that never ends: reading it to its end
// would never return.
type endless struct{ memObjects }

func (endless) OpenFrom(context.Context, string, int64, string) (io.ReadCloser, string, error) {
	return io.NopCloser(xs{}), "", nil
}

type xs struct{}

func (xs) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}
