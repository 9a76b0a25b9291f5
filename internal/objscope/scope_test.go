package objscope_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/objscope"
)

var (
	orgA  = uuid.MustParse("0192f000-0000-7000-8000-00000000000a")
	orgB  = uuid.MustParse("0192f000-0000-7000-8000-00000000000b")
	rootA = "orgs/" + orgA.String() + "/"
	rootB = "orgs/" + orgB.String() + "/"
	grant = objscope.Grant{Bucket: "library", Prefix: "shared/"}

	// minio is a deployment on a local S3-compatible server, as in
	// development and the tests; named one on a host of its own; aws has
	// no endpoint.
	minio = objscope.Scope{OrgID: orgA, Storage: objscope.Storage{Bucket: "media", Endpoint: "http://127.0.0.1:9000"}, Grants: []objscope.Grant{grant}}
	named = objscope.Scope{OrgID: orgA, Storage: objscope.Storage{Bucket: "media", Endpoint: "https://s3.example.net"}}
	aws   = objscope.Scope{OrgID: orgA, Storage: objscope.Storage{Bucket: "media"}}
)

// TestReferenceEscapes is every way found to name an object outside the
// organization's scope; each must be refused as a storage reference.
func TestReferenceEscapes(t *testing.T) {
	t.Parallel()
	presign := "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=k%2F20260101%2Fus-east-1%2Fs3%2Faws4_request" +
		"&X-Amz-Date=20260101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=abc&x-id=GetObject"
	cases := map[string]struct {
		scope objscope.Scope
		raw   string
	}{
		// Whose storage.
		"another org's asset":          {minio, "s3://media/" + rootB + "assets/0192f000-0000-7000-8000-000000000001/source"},
		"another org's job output":     {minio, "s3://media/" + rootB + "jobs/0192f000-0000-7000-8000-000000000002/outputs/720p.mp4"},
		"another bucket":               {minio, "s3://other/" + rootA + "a.mp4"},
		"bucket name in another case":  {minio, "s3://MEDIA/" + rootA + "a.mp4"},
		"the bucket's root":            {minio, "s3://media/"},
		"the bucket without a slash":   {minio, "s3://media"},
		"the org's root as an object":  {minio, "s3://media/" + rootA},
		"outside the org tree":         {minio, "s3://media/public/a.mp4"},
		"org id as a string prefix":    {minio, "s3://media/orgs/" + orgA.String() + "x/a.mp4"},
		"org id in upper case":         {minio, "s3://media/orgs/" + strings.ToUpper(orgA.String()) + "/a.mp4"},
		"granted bucket, other prefix": {minio, "s3://library/private/a.mp4"},
		"granted prefix as a string":   {minio, "s3://library/shared-private/a.mp4"},
		"grant of another scope":       {aws, "s3://library/shared/a.mp4"},
		// Segments.
		"dot-dot":                        {minio, "s3://media/" + rootA + "../" + rootB + "a.mp4"},
		"dot-dot at the end":             {minio, "s3://media/" + rootA + "x/.."},
		"dot":                            {minio, "s3://media/" + rootA + "./a.mp4"},
		"dot-dot in a granted bucket":    {minio, "s3://library/shared/../private/a.mp4"},
		"empty segment":                  {minio, "s3://media/" + rootA + "x//a.mp4"},
		"leading slash":                  {minio, "s3://media//" + rootA + "a.mp4"},
		"a folder, not an object":        {minio, "s3://media/" + rootA + "dir/"},
		"encoded dot-dot":                {minio, "s3://media/" + rootA + "%2e%2e/" + rootB + "a.mp4"},
		"encoded dot-dot, upper case":    {minio, "s3://media/" + rootA + "%2E%2E/" + rootB + "a.mp4"},
		"half-encoded dot-dot":           {minio, "s3://media/" + rootA + ".%2e/" + rootB + "a.mp4"},
		"encoded slash":                  {minio, "s3://media/orgs%2F" + orgB.String() + "%2Fa.mp4"},
		"encoded slashes around dot-dot": {minio, "s3://media/" + rootA + "x%2F..%2F..%2F" + orgB.String() + "%2Fa.mp4"},
		"encoded backslash":              {minio, "s3://media/" + rootA + "..%5C" + orgB.String() + "%5Ca.mp4"},
		"backslash":                      {minio, `s3://media/` + rootA + `..\` + orgB.String() + `\a.mp4`},
		"double-encoded dot-dot":         {minio, "s3://media/" + rootA + "%252e%252e/" + rootB + "a.mp4"},
		"double-encoded slash":           {minio, "s3://media/" + rootA + "x%252F..%252Fa.mp4"},
		"overlong UTF-8 dot":             {minio, "s3://media/" + rootA + "%C0%AE%C0%AE/a.mp4"},
		"invalid UTF-8":                  {minio, "s3://media/" + rootA + "%FF.mp4"},
		"malformed percent-encoding":     {minio, "s3://media/" + rootA + "%zz.mp4"},
		"truncated percent-encoding":     {minio, "s3://media/" + rootA + "a.mp4%2"},
		"NUL":                            {minio, "s3://media/" + rootA + "a\x00.mp4"},
		"encoded NUL":                    {minio, "s3://media/" + rootA + "a%00.mp4"},
		"newline":                        {minio, "s3://media/" + rootA + "a\n.mp4"},
		"encoded newline":                {minio, "s3://media/" + rootA + "a%0A.mp4"},
		"encoded DEL":                    {minio, "s3://media/" + rootA + "a%7F.mp4"},
		"encoded C1 control":             {minio, "s3://media/" + rootA + "a%C2%85.mp4"},
		"key over 1024 bytes":            {minio, "s3://media/" + rootA + strings.Repeat("a", objscope.MaxKeyBytes-len(rootA)+1)},
		"query string":                   {minio, "s3://media/" + rootA + "a.mp4?versionId=1"},
		"query string to another org":    {minio, "s3://media/" + rootA + "?/../" + rootB + "a.mp4"},
		"fragment":                       {minio, "s3://media/" + rootA + "a.mp4#x"},
		"credentials":                    {minio, "s3://key:secret@media/" + rootA + "a.mp4"},
		"user before the bucket":         {minio, "s3://other@media/" + rootA + "a.mp4"},
		"port":                           {minio, "s3://media:443/" + rootA + "a.mp4"},
		"encoded bucket":                 {minio, "s3://me%64ia/" + rootA + "a.mp4"},
		"no bucket":                      {minio, "s3:///" + rootA + "a.mp4"},
		"opaque s3 form":                 {minio, "s3:media/" + rootA + "a.mp4"},
		"one slash":                      {minio, "s3:/media/" + rootA + "a.mp4"},
		"upper-case scheme, another org": {minio, "S3://media/" + rootB + "a.mp4"},
		// The storage endpoint over http(s).
		"endpoint, presigned URL of another org": {minio, "http://127.0.0.1:9000/media/" + rootB + "a.mp4" + presign},
		"endpoint, another bucket":               {minio, "http://127.0.0.1:9000/other/a.mp4"},
		"endpoint, bucket root":                  {minio, "http://127.0.0.1:9000/media/"},
		"endpoint, no bucket":                    {minio, "http://127.0.0.1:9000/"},
		"endpoint, https instead of http":        {minio, "https://127.0.0.1:9000/media/" + rootB + "a.mp4"},
		"named endpoint, plain http":             {named, "http://s3.example.net/media/" + rootB + "a.mp4"},
		"named endpoint, explicit port":          {named, "https://s3.example.net:443/media/" + rootB + "a.mp4"},
		"endpoint, IPv4-mapped IPv6 host":        {minio, "http://[::ffff:127.0.0.1]:9000/media/" + rootB + "a.mp4"},
		"endpoint, encoded dot-dot":              {minio, "http://127.0.0.1:9000/media/" + rootA + "%2e%2e/" + rootB + "a.mp4"},
		"endpoint, dot-dot":                      {minio, "http://127.0.0.1:9000/media/" + rootA + "../" + rootB + "a.mp4"},
		"endpoint, encoded slash in the bucket":  {minio, "http://127.0.0.1:9000/media%2F" + rootA + "a.mp4"},
		"endpoint, encoded backslash":            {minio, "http://127.0.0.1:9000/media/" + rootA + "..%5Ca.mp4"},
		"endpoint, version query":                {minio, "http://127.0.0.1:9000/media/" + rootA + "a.mp4?versionId=3"},
		"endpoint, response override query":      {minio, "http://127.0.0.1:9000/media/" + rootA + "a.mp4?response-content-type=text/html"},
		"endpoint, credentials":                  {minio, "http://u:p@127.0.0.1:9000/media/" + rootA + "a.mp4"},
		"endpoint, fragment":                     {minio, "http://127.0.0.1:9000/media/" + rootA + "a.mp4#f"},
		"endpoint, unicode control":              {minio, "http://127.0.0.1:9000/media/" + rootA + "a\u0085.mp4"},
		"named endpoint, virtual-hosted":         {named, "https://media.s3.example.net/" + rootB + "a.mp4"},
		"named endpoint, other bucket":           {named, "https://other.s3.example.net/a.mp4"},
		"named endpoint, case and trailing dot":  {named, "https://S3.Example.NET./media/" + rootB + "a.mp4"},
		"aws, virtual-hosted":                    {aws, "https://media.s3.amazonaws.com/" + rootB + "a.mp4"},
		"aws, regional virtual-hosted":           {aws, "https://media.s3.eu-west-1.amazonaws.com/" + rootB + "a.mp4" + presign},
		"aws, dual-stack":                        {aws, "https://media.s3.dualstack.us-east-1.amazonaws.com/" + rootB + "a.mp4"},
		"aws, legacy regional":                   {aws, "https://media.s3-us-west-2.amazonaws.com/" + rootB + "a.mp4"},
		"aws, path-style":                        {aws, "https://s3.amazonaws.com/media/" + rootB + "a.mp4"},
		"aws, China":                             {aws, "https://s3.cn-north-1.amazonaws.com.cn/media/" + rootB + "a.mp4"},
		"aws, encoded slash":                     {aws, "https://media.s3.amazonaws.com/orgs%2F" + orgB.String() + "%2Fa.mp4"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ref, isRef, err := tc.scope.Reference(tc.raw)
			require.True(t, isRef, "a storage reference")
			require.Error(t, err, "admitted as %+v", ref)
			var refusal *objscope.Refusal
			require.ErrorAs(t, err, &refusal)
			assert.ErrorIs(t, err, objscope.ErrRefused)
			assert.Contains(t, err.Error(), "allowed: s3://media/"+rootA, "the refusal says what is allowed")
			assert.Equal(t, objscope.Ref{}, ref)
		})
	}
}

func TestReferenceAdmits(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		scope objscope.Scope
		raw   string
		want  objscope.Ref
	}{
		"own asset":                {minio, "s3://media/" + rootA + "assets/x/source", objscope.Ref{Bucket: "media", Key: rootA + "assets/x/source"}},
		"own job output":           {minio, "s3://media/" + rootA + "jobs/j/outputs/720p.mp4", objscope.Ref{Bucket: "media", Key: rootA + "jobs/j/outputs/720p.mp4"}},
		"upper-case scheme":        {minio, "S3://media/" + rootA + "a.mp4", objscope.Ref{Bucket: "media", Key: rootA + "a.mp4"}},
		"encoded space":            {minio, "s3://media/" + rootA + "a%20b.mp4", objscope.Ref{Bucket: "media", Key: rootA + "a b.mp4"}},
		"plain space":              {minio, "s3://media/" + rootA + "a b.mp4", objscope.Ref{Bucket: "media", Key: rootA + "a b.mp4"}},
		"encoded question mark":    {minio, "s3://media/" + rootA + "a%3F.mp4", objscope.Ref{Bucket: "media", Key: rootA + "a?.mp4"}},
		"literal percent":          {minio, "s3://media/" + rootA + "100%25.mp4", objscope.Ref{Bucket: "media", Key: rootA + "100%.mp4"}},
		"plus sign":                {minio, "s3://media/" + rootA + "a+b.mp4", objscope.Ref{Bucket: "media", Key: rootA + "a+b.mp4"}},
		"dots inside a name":       {minio, "s3://media/" + rootA + "..a../b..mp4", objscope.Ref{Bucket: "media", Key: rootA + "..a../b..mp4"}},
		"unicode":                  {minio, "s3://media/" + rootA + "%C3%A9t%C3%A9.mp4", objscope.Ref{Bucket: "media", Key: rootA + "été.mp4"}},
		"longest key":              {minio, "s3://media/" + rootA + strings.Repeat("a", objscope.MaxKeyBytes-len(rootA)), objscope.Ref{Bucket: "media", Key: rootA + strings.Repeat("a", objscope.MaxKeyBytes-len(rootA))}},
		"granted bucket":           {minio, "s3://library/shared/a.mp4", objscope.Ref{Bucket: "library", Key: "shared/a.mp4"}},
		"endpoint, path-style":     {minio, "http://127.0.0.1:9000/media/" + rootA + "a%20b.mp4", objscope.Ref{Bucket: "media", Key: rootA + "a b.mp4"}},
		"endpoint, presigned":      {minio, "https://127.0.0.1:9000/media/" + rootA + "a.mp4?X-Amz-Signature=abc&x-id=GetObject", objscope.Ref{Bucket: "media", Key: rootA + "a.mp4"}},
		"endpoint, granted bucket": {minio, "http://127.0.0.1:9000/library/shared/a.mp4", objscope.Ref{Bucket: "library", Key: "shared/a.mp4"}},
		"named, virtual-hosted":    {named, "https://media.s3.example.net/" + rootA + "a.mp4", objscope.Ref{Bucket: "media", Key: rootA + "a.mp4"}},
		"aws, virtual-hosted":      {aws, "https://media.s3.us-east-1.amazonaws.com/" + rootA + "a.mp4", objscope.Ref{Bucket: "media", Key: rootA + "a.mp4"}},
		"aws, path-style":          {aws, "https://s3.amazonaws.com/media/" + rootA + "a.mp4", objscope.Ref{Bucket: "media", Key: rootA + "a.mp4"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ref, isRef, err := tc.scope.Reference(tc.raw)
			require.NoError(t, err)
			assert.True(t, isRef)
			assert.Equal(t, tc.want, ref)
			// The canonical form resolves to the same object.
			again, err := tc.scope.Object(ref.URL())
			require.NoError(t, err, "canonical %s", ref.URL())
			assert.Equal(t, ref, again)
		})
	}
}

// TestReferenceLeavesOtherURLs: URLs that are not on the storage endpoint
// are not storage references; the caller checks them as ordinary URLs.
func TestReferenceLeavesOtherURLs(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		scope objscope.Scope
		raw   string
	}{
		"a CDN":                      {minio, "https://cdn.example.com/" + rootB + "a.mp4"},
		"another loopback address":   {minio, "http://127.0.0.2:9000/media/" + rootB + "a.mp4"},
		"another port of the host":   {minio, "https://127.0.0.1/media/" + rootB + "a.mp4"},
		"another port of the name":   {named, "https://s3.example.net:8443/media/" + rootB + "a.mp4"},
		"a host ending like the IP":  {minio, "http://x.127.0.0.1/media/" + rootB + "a.mp4"},
		"a look-alike of the name":   {named, "https://s3.example.net.evil.example/media/" + rootB + "a.mp4"},
		"a suffix without a dot":     {named, "https://evils3.example.net/media/" + rootB + "a.mp4"},
		"another AWS bucket":         {aws, "https://other.s3.amazonaws.com/" + rootB + "a.mp4"},
		"another AWS bucket by path": {aws, "https://s3.amazonaws.com/other/" + rootB + "a.mp4"},
		"another AWS service":        {aws, "https://media.ec2.amazonaws.com/" + rootB + "a.mp4"},
		"not a URL":                  {minio, "a.mp4"},
		"ftp":                        {minio, "ftp://127.0.0.1:9000/media/" + rootB + "a.mp4"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, isRef, err := tc.scope.Reference(tc.raw)
			require.NoError(t, err)
			assert.False(t, isRef)
			_, err = tc.scope.Object(tc.raw)
			assert.ErrorIs(t, err, objscope.ErrRefused, "where a storage reference is required, it is refused")
		})
	}
}

func TestPrefix(t *testing.T) {
	t.Parallel()
	whole := minio
	whole.Grants = []objscope.Grant{{Bucket: "archive"}}
	cases := map[string]struct {
		scope objscope.Scope
		raw   string
		want  *objscope.Ref // nil: refused
	}{
		"own root":             {minio, "s3://media/" + rootA, &objscope.Ref{Bucket: "media", Key: rootA}},
		"under own root":       {minio, "s3://media/" + rootA + "archive/", &objscope.Ref{Bucket: "media", Key: rootA + "archive/"}},
		"partial name":         {minio, "s3://media/" + rootA + "arch", &objscope.Ref{Bucket: "media", Key: rootA + "arch"}},
		"granted prefix":       {minio, "s3://library/shared/", &objscope.Ref{Bucket: "library", Key: "shared/"}},
		"whole granted bucket": {whole, "s3://archive/", &objscope.Ref{Bucket: "archive", Key: ""}},
		"another org":          {minio, "s3://media/" + rootB, nil},
		"bucket root":          {minio, "s3://media/", nil},
		"bucket":               {minio, "s3://media", nil},
		"the orgs folder":      {minio, "s3://media/orgs/", nil},
		"root without slash":   {minio, "s3://media/orgs/" + orgA.String(), nil},
		"org id as a prefix":   {minio, "s3://media/orgs/" + orgA.String() + "x/", nil},
		"dot-dot":              {minio, "s3://media/" + rootA + "../" + rootB, nil},
		"encoded dot-dot":      {minio, "s3://media/" + rootA + "%2E%2E/" + rootB, nil},
		"encoded slash":        {minio, "s3://media/" + rootA + "..%2F" + orgB.String(), nil},
		"empty segment":        {minio, "s3://media/" + rootA + "x//", nil},
		"another bucket":       {minio, "s3://other/" + rootA, nil},
		"granted, outside":     {minio, "s3://library/", nil},
		"query":                {minio, "s3://media/" + rootA + "?x=1", nil},
		"https":                {minio, "https://media/" + rootA, nil},
		"endpoint URL":         {minio, "http://127.0.0.1:9000/media/" + rootA, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ref, err := tc.scope.Prefix(tc.raw)
			if tc.want == nil {
				assert.ErrorIs(t, err, objscope.ErrRefused)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, *tc.want, ref)
		})
	}
}

func TestCheckObject(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		ref objscope.Ref
		ok  bool
	}{
		"own asset":         {objscope.Ref{Bucket: "media", Key: rootA + "assets/x/source"}, true},
		"granted":           {objscope.Ref{Bucket: "library", Key: "shared/a.mp4"}, true},
		"another org":       {objscope.Ref{Bucket: "media", Key: rootB + "assets/x/source"}, false},
		"dot-dot":           {objscope.Ref{Bucket: "media", Key: rootA + "../" + rootB + "x"}, false},
		"empty":             {objscope.Ref{Bucket: "media", Key: ""}, false},
		"another bucket":    {objscope.Ref{Bucket: "other", Key: rootA + "x"}, false},
		"control character": {objscope.Ref{Bucket: "media", Key: rootA + "a\x00"}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := minio.CheckObject(tc.ref)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, objscope.ErrRefused)
			}
		})
	}
}

func TestCheckGrant(t *testing.T) {
	t.Parallel()
	st := objscope.Storage{Bucket: "media"}
	cases := map[string]struct {
		grant objscope.Grant
		field string // "" = valid
	}{
		"whole bucket":            {objscope.Grant{Bucket: "partner-library"}, ""},
		"prefix":                  {objscope.Grant{Bucket: "partner.library", Prefix: "feeds/a/"}, ""},
		"the deployment's bucket": {objscope.Grant{Bucket: "media"}, "bucket"},
		"upper case":              {objscope.Grant{Bucket: "Partner"}, "bucket"},
		"too short":               {objscope.Grant{Bucket: "ab"}, "bucket"},
		"IP address":              {objscope.Grant{Bucket: "192.168.0.1"}, "bucket"},
		"adjacent dots":           {objscope.Grant{Bucket: "a..b"}, "bucket"},
		"s3 URL":                  {objscope.Grant{Bucket: "s3://partner"}, "bucket"},
		"prefix without a slash":  {objscope.Grant{Bucket: "partner", Prefix: "feeds"}, "prefix"},
		"prefix with dot-dot":     {objscope.Grant{Bucket: "partner", Prefix: "feeds/../"}, "prefix"},
		"prefix with a slash":     {objscope.Grant{Bucket: "partner", Prefix: "/feeds/"}, "prefix"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			errs := st.CheckGrant(tc.grant)
			if tc.field == "" {
				assert.Empty(t, errs)
				return
			}
			require.Len(t, errs, 1, "%v", errs)
			assert.Equal(t, tc.field, errs[0].Field)
		})
	}
}

type grants []objscope.Grant

func (g grants) BucketGrants(_ context.Context, _ uuid.UUID) ([]objscope.Grant, error) { return g, nil }

// countingGrants counts the lookups, and fails them when err is set.
type countingGrants struct {
	grants []objscope.Grant
	err    error
	calls  int
}

func (c *countingGrants) BucketGrants(_ context.Context, _ uuid.UUID) ([]objscope.Grant, error) {
	c.calls++
	return c.grants, c.err
}

// TestResolverReference: an organization's own objects and ordinary URLs
// are resolved without reading its grants; a reference its own storage
// refuses is tried again with them; a failed lookup is an error, not a
// refusal.
func TestResolverReference(t *testing.T) {
	t.Parallel()
	src := &countingGrants{grants: []objscope.Grant{grant}}
	r, err := objscope.NewResolver(objscope.Storage{Bucket: "media"}, src)
	require.NoError(t, err)
	ctx := t.Context()

	ref, isRef, err := r.Reference(ctx, orgA, "s3://media/"+rootA+"a.mp4")
	require.NoError(t, err)
	assert.True(t, isRef)
	assert.Equal(t, objscope.Ref{Bucket: "media", Key: rootA + "a.mp4"}, ref)
	_, isRef, err = r.Reference(ctx, orgA, "https://cdn.example.com/a.mp4")
	require.NoError(t, err)
	assert.False(t, isRef)
	assert.Zero(t, src.calls, "no grant lookup for its own objects or ordinary URLs")

	ref, _, err = r.Reference(ctx, orgA, "s3://library/shared/a.mp4")
	require.NoError(t, err)
	assert.Equal(t, objscope.Ref{Bucket: "library", Key: "shared/a.mp4"}, ref)
	assert.Equal(t, 1, src.calls)
	_, _, err = r.Reference(ctx, orgA, "s3://media/"+rootB+"a.mp4")
	assert.ErrorIs(t, err, objscope.ErrRefused)

	src.err = errors.New("postgres is down")
	_, _, err = r.Reference(ctx, orgA, "s3://library/shared/a.mp4")
	require.Error(t, err)
	assert.NotErrorIs(t, err, objscope.ErrRefused, "a failed lookup is not a refusal")
}

func TestResolver(t *testing.T) {
	t.Parallel()
	_, err := objscope.NewResolver(objscope.Storage{}, grants{})
	assert.Error(t, err, "a bucket is required")
	_, err = objscope.NewResolver(objscope.Storage{Bucket: "media", Endpoint: "not a url"}, grants{})
	assert.Error(t, err, "the endpoint must be an absolute URL")

	r, err := objscope.NewResolver(objscope.Storage{Bucket: "media"}, grants{grant})
	require.NoError(t, err)
	_, err = r.Own(orgA).Object("s3://library/shared/a.mp4")
	assert.ErrorIs(t, err, objscope.ErrRefused, "Own carries no grants")
	s, err := r.Scope(t.Context(), orgA)
	require.NoError(t, err)
	_, err = s.Object("s3://library/shared/a.mp4")
	assert.NoError(t, err)
}
