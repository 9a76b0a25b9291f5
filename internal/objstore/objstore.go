// Package objstore talks to S3-compatible object storage. The API presigns
// URLs so customers and encode pods move bytes directly to and from storage;
// only this package holds storage credentials.
package objstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mpegflow/mpegflow/internal/objscope"
)

// Config locates the bucket. Endpoint is empty for AWS S3; set it (and
// PathStyle) for MinIO, versitygw and other S3-compatible servers.
//
// AccessKeyID and SecretAccessKey are static credentials. Leave both empty
// to use the AWS SDK's default credential chain instead, the way clusters
// hand out credentials: environment variables, shared config files, web
// identity (EKS IRSA), container credentials (EKS Pod Identity, ECS) and
// instance roles.
type Config struct {
	Endpoint        string
	Region          string
	Bucket          string
	AccessKeyID     string
	SecretAccessKey string
	PathStyle       bool
	// PresignTTL is how long presigned URLs stay valid (default 1 h).
	PresignTTL time.Duration
	// CredentialsTimeout bounds New's first retrieval of credentials from
	// the default chain (default 15 s): a pod without a role fails at start,
	// not on its first upload.
	CredentialsTimeout time.Duration
}

// ErrNoCredentials means no storage credentials were found: neither static
// keys nor anything in the default credential chain.
var ErrNoCredentials = errors.New("no storage credentials")

// Store presigns and manages objects in one bucket.
type Store struct {
	client    *s3.Client
	presign   *s3.PresignClient
	bucket    string
	endpoint  string
	pathStyle bool
	ttl       time.Duration
}

// New validates cfg and returns a Store. It does not contact storage. With
// static keys it does no I/O; without them it loads the default credential
// chain and retrieves credentials once, so missing or unusable credentials
// are a startup error (wrapping ErrNoCredentials) rather than a failure of
// every presign.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("objstore: bucket is required (set S3_BUCKET)")
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, errors.New("objstore: set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither to use the default AWS credential chain")
	}
	region := cmp.Or(cfg.Region, "us-east-1")
	var creds aws.CredentialsProvider
	if cfg.AccessKeyID != "" {
		creds = credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")
	} else {
		var err error
		if creds, err = defaultChain(ctx, region, cmp.Or(cfg.CredentialsTimeout, 15*time.Second)); err != nil {
			return nil, err
		}
	}
	opts := s3.Options{
		Region:       region,
		UsePathStyle: cfg.PathStyle,
		Credentials:  creds,
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	client := s3.New(opts)
	return &Store{
		client:    client,
		presign:   s3.NewPresignClient(client),
		bucket:    cfg.Bucket,
		endpoint:  cfg.Endpoint,
		pathStyle: cfg.PathStyle,
		ttl:       cmp.Or(cfg.PresignTTL, time.Hour),
	}, nil
}

// defaultChain loads the AWS SDK's default credential chain and retrieves
// credentials once within timeout. The returned provider caches and
// refreshes them before they expire.
func defaultChain(ctx context.Context, region string, timeout time.Duration) (aws.CredentialsProvider, error) {
	ac, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("objstore: load the default AWS credential chain: %w", err)
	}
	if ac.Credentials == nil {
		return nil, fmt.Errorf("objstore: %w: %s", ErrNoCredentials, credentialsHint)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := ac.Credentials.Retrieve(rctx)
	if err != nil {
		return nil, fmt.Errorf("objstore: %w: %s: %w", ErrNoCredentials, credentialsHint, err)
	}
	if c.CanExpire && !c.Expires.After(time.Now()) {
		// The SDK's cache moves Expires up by its refresh window (5 min for
		// container credentials): these are expired or about to be, and a
		// fresh retrieval did not renew them.
		return nil, fmt.Errorf("objstore: %w: the credentials from %s expire at %s, within the SDK's refresh window, and retrieving them again did not renew them; check the credential source's clock and credential lifetime",
			ErrNoCredentials, c.Source, c.Expires.Format(time.RFC3339))
	}
	return refreshFailure{ac.Credentials}, nil
}

// refreshFailure marks a failed refresh of chain credentials (a revoked
// role, an unreachable agent) with ErrNoCredentials, so callers can answer
// "storage unavailable" instead of passing on the SDK's message.
type refreshFailure struct{ aws.CredentialsProvider }

func (r refreshFailure) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := r.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, fmt.Errorf("%w: refresh: %w", ErrNoCredentials, err)
	}
	return c, nil
}

// credentialsHint says what was tried and what to set.
const credentialsHint = "S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY are empty, so the default AWS credential chain was tried " +
	"(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared config files, " +
	"AWS_WEB_IDENTITY_TOKEN_FILE+AWS_ROLE_ARN (EKS IRSA), AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity, ECS), " +
	"the instance role); set static keys, or give the pod a role (chart: apiserver.serviceAccount.annotations)"

// PresignedURL is a URL that grants one operation on one object until it
// expires.
type PresignedURL struct {
	URL       string    `json:"url"`
	Method    string    `json:"method"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PresignPut grants an upload of key with the given content type, of any
// size. Encode pods upload outputs with it; a customer's upload uses
// PresignPutSized so the URL cannot store more than was declared.
func (s *Store) PresignPut(ctx context.Context, key, contentType string) (PresignedURL, error) {
	req, err := s.presign.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), ContentType: aws.String(contentType),
	}, s3.WithPresignExpires(s.ttl))
	if err != nil {
		return PresignedURL{}, fmt.Errorf("presign put %s: %w", key, err)
	}
	return PresignedURL{URL: req.URL, Method: req.Method, ExpiresAt: time.Now().Add(s.ttl)}, nil
}

// PresignPutSized grants an upload of exactly size bytes to key with the
// given content type. Content-Length is one of the URL's signed headers, so
// storage refuses (403 SignatureDoesNotMatch) a PUT of any other length and
// a body that ends early is not stored: a client that declared 10 bytes
// cannot store 10 GB. size must be positive: SigV4 signers leave a zero
// Content-Length unsigned, so an empty upload cannot be bound.
func (s *Store) PresignPutSized(ctx context.Context, key, contentType string, size int64) (PresignedURL, error) {
	if size <= 0 {
		return PresignedURL{}, fmt.Errorf("presign put %s: size %d: a bound upload needs at least one byte", key, size)
	}
	req, err := s.presign.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), ContentType: aws.String(contentType),
		ContentLength: aws.Int64(size),
	}, s3.WithPresignExpires(s.ttl))
	if err != nil {
		return PresignedURL{}, fmt.Errorf("presign put %s: %w", key, err)
	}
	if !signsContentLength(req.URL) {
		return PresignedURL{}, fmt.Errorf("presign put %s: the signature does not cover Content-Length", key)
	}
	return PresignedURL{URL: req.URL, Method: req.Method, ExpiresAt: time.Now().Add(s.ttl)}, nil
}

// signsContentLength reports whether a presigned URL's X-Amz-SignedHeaders
// lists content-length. The SDK decides which headers it signs; a version
// that stopped signing this one would silently unbind uploads' sizes.
func signsContentLength(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	return slices.Contains(strings.Split(u.Query().Get("X-Amz-SignedHeaders"), ";"), "content-length")
}

// PresignGet grants a download of key.
func (s *Store) PresignGet(ctx context.Context, key string) (PresignedURL, error) {
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key),
	}, s3.WithPresignExpires(s.ttl))
	if err != nil {
		return PresignedURL{}, fmt.Errorf("presign get %s: %w", key, err)
	}
	return PresignedURL{URL: req.URL, Method: req.Method, ExpiresAt: time.Now().Add(s.ttl)}, nil
}

// Delete removes key; deleting a missing object succeeds.
func (s *Store) Delete(ctx context.Context, key string) error {
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}); err != nil {
		return fmt.Errorf("delete object %s: %w", key, err)
	}
	return nil
}

// DeleteMany removes keys, up to 1,000 per request; missing objects are
// not an error. It stops at the first request that fails, or whose answer
// names a key it could not delete.
func (s *Store) DeleteMany(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 1000)]
		keys = keys[len(batch):]
		objs := make([]types.ObjectIdentifier, len(batch))
		for i, k := range batch {
			objs[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(s.bucket),
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)}})
		if err != nil {
			return fmt.Errorf("delete %d objects: %w", len(batch), err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("delete %d objects: %s: %s %s", len(batch), aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
		}
	}
	return nil
}

// DeletePrefix removes every object whose key starts with prefix (which
// should end in "/": "a/b" also matches "a/bc") and returns how many it
// asked to delete.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	n := 0
	for {
		keys, more, err := s.ListPage(ctx, s.bucket, prefix, "", 1000)
		if err != nil {
			return n, err
		}
		if err := s.DeleteMany(ctx, keys); err != nil {
			return n, err
		}
		n += len(keys)
		if !more || len(keys) == 0 {
			return n, nil
		}
	}
}

// PresignTTL is how long the URLs this store presigns stay valid: after it,
// nobody uploads with one handed out before.
func (s *Store) PresignTTL() time.Duration { return s.ttl }

// Exists reports whether key exists.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err == nil {
		return true, nil
	}
	var nf *types.NotFound
	if errors.As(err, &nf) {
		return false, nil
	}
	return false, fmt.Errorf("head object %s: %w", key, err)
}

// EnsureBucket creates the bucket if it does not exist (development and tests).
func (s *Store) EnsureBucket(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}); err == nil {
		return nil
	}
	_, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", s.bucket, err)
	}
	return nil
}

// PresignGetIn grants a download of key in another bucket reachable with the
// same credentials (s3:// job inputs in a bucket granted to the job's
// organization). The caller admits bucket and key through the
// organization's objscope.Scope first: the credentials reach far more.
func (s *Store) PresignGetIn(ctx context.Context, bucket, key string) (PresignedURL, error) {
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key),
	}, s3.WithPresignExpires(s.ttl))
	if err != nil {
		return PresignedURL{}, fmt.Errorf("presign get s3://%s/%s: %w", bucket, key, err)
	}
	return PresignedURL{URL: req.URL, Method: req.Method, ExpiresAt: time.Now().Add(s.ttl)}, nil
}

// Bucket is the deployment's bucket, where each organization owns orgs/{id}/.
func (s *Store) Bucket() string { return s.bucket }

// Storage describes this store to tenants' storage scopes: its bucket, and
// the endpoint whose URLs are storage references rather than ordinary ones.
func (s *Store) Storage() objscope.Storage {
	return objscope.Storage{Bucket: s.bucket, Endpoint: s.endpoint}
}

// ListPage returns up to max keys of bucket under prefix that sort after
// startAfter, in key order, and whether more follow. Listing resumes from
// any key, so a backfill can persist the last key it handled as its cursor.
func (s *Store) ListPage(ctx context.Context, bucket, prefix, startAfter string, max int) (keys []string, more bool, err error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(int32(max))}
	if startAfter != "" {
		in.StartAfter = aws.String(startAfter)
	}
	out, err := s.client.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, false, fmt.Errorf("list s3://%s/%s after %q: %w", bucket, prefix, startAfter, err)
	}
	keys = make([]string, 0, len(out.Contents))
	for _, o := range out.Contents {
		if o.Key != nil && !strings.HasSuffix(*o.Key, "/") { // folder markers are not inputs
			keys = append(keys, *o.Key)
		}
	}
	return keys, aws.ToBool(out.IsTruncated), nil
}

// Object is an object opened for reading: its body (the caller closes it)
// and what an HTTP answer about it says.
type Object struct {
	Body          io.ReadCloser
	ContentLength int64
	// ContentRange is set when a range was asked for and answered
	// ("bytes 0-99/1000").
	ContentRange string
	ContentType  string
}

// ErrRange is a range the object does not have.
var ErrRange = errors.New("the object has no such range")

// Open streams key, or only rng of it (an HTTP Range header's value,
// passed to the store as it is; "" for all of it).
func (s *Store) Open(ctx context.Context, key, rng string) (Object, error) {
	out, err := s.get(ctx, key, rng, "")
	if err != nil {
		return Object{}, err
	}
	return Object{Body: out.Body, ContentLength: aws.ToInt64(out.ContentLength), ContentRange: aws.ToString(out.ContentRange), ContentType: aws.ToString(out.ContentType)}, nil
}

// ErrChanged means the object is no longer the version asked for (its
// ETag differs: it was overwritten).
var ErrChanged = errors.New("the object changed")

// OpenFrom streams key from byte offset on; the caller closes the body. A
// non-empty etag reads only that version of the object (If-Match), else
// ErrChanged. It returns the ETag of what it opened ("" when offset is at
// the end: nothing was opened).
func (s *Store) OpenFrom(ctx context.Context, key string, offset int64, etag string) (io.ReadCloser, string, error) {
	rng := ""
	if offset > 0 {
		rng = fmt.Sprintf("bytes=%d-", offset)
	}
	out, err := s.get(ctx, key, rng, etag)
	if errors.Is(err, ErrRange) {
		return io.NopCloser(strings.NewReader("")), "", nil // offset at the end: nothing left
	}
	if err != nil {
		return nil, "", err
	}
	return out.Body, aws.ToString(out.ETag), nil
}

// get is GetObject of key, of rng ("" for all of it) and only of version
// ifMatch when that is not "", with storage's refusals as ErrNoObject,
// ErrRange and ErrChanged.
func (s *Store) get(ctx context.Context, key, rng, ifMatch string) (*s3.GetObjectOutput, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}
	if rng != "" {
		in.Range = aws.String(rng)
	}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := s.client.GetObject(ctx, in)
	if err == nil {
		return out, nil
	}
	var nk *types.NoSuchKey
	var code interface{ ErrorCode() string }
	switch {
	case errors.As(err, &nk):
		err = ErrNoObject
	case errors.As(err, &code) && code.ErrorCode() == "InvalidRange":
		err = ErrRange
	case errors.As(err, &code) && code.ErrorCode() == "PreconditionFailed":
		err = ErrChanged
	}
	return nil, fmt.Errorf("open %s: %w", key, err)
}

// Put stores body under key (tests and the backfill benchmark write
// manifests and library objects with it).
func (s *Store) Put(ctx context.Context, key string, body io.Reader) error {
	if _, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key), Body: body}); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// ErrNoObject means the object does not exist.
var ErrNoObject = errors.New("no such object")

// ConnectSource is the Content-Security-Policy source expression that
// matches this bucket's presigned URLs and nothing wider: the scheme and
// host they point at ("https://bucket.s3.eu-west-1.amazonaws.com"), and
// with path-style addressing the bucket's path on it
// ("https://s3.example.com/bucket/"), so a page allowed to upload here can
// reach no other bucket of the endpoint. It presigns a URL locally.
func (s *Store) ConnectSource(ctx context.Context) (string, error) {
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String("source")},
		s3.WithPresignExpires(s.ttl))
	if err != nil {
		return "", fmt.Errorf("objstore: presign to find the storage origin: %w", err)
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return "", fmt.Errorf("objstore: presigned URL: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("objstore: presigned URL %q has no origin", req.URL)
	}
	source := u.Scheme + "://" + u.Host
	if s.pathStyle {
		source += "/" + url.PathEscape(s.bucket) + "/"
	}
	return source, nil
}
