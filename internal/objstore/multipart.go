package objstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3's limits on multipart uploads.
const (
	MinPartSize = 5 << 20 // every part but the last
	MaxPartSize = 5 << 30
	MaxParts    = 10_000
)

// ErrNoUpload means storage has no such multipart upload: it was completed
// or aborted.
var ErrNoUpload = errors.New("no such multipart upload")

// Part is one uploaded part of a multipart upload as storage lists it.
type Part struct {
	Number int32
	ETag   string
	Size   int64
}

// CreateMultipart opens a multipart upload of key with the given content
// type and returns storage's upload id.
func (s *Store) CreateMultipart(ctx context.Context, key, contentType string) (string, error) {
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), ContentType: aws.String(contentType),
	})
	if err != nil {
		return "", fmt.Errorf("create multipart upload %s: %w", key, err)
	}
	return aws.ToString(out.UploadId), nil
}

// PresignUploadPart grants the upload of part number of uploadID, of
// exactly size bytes: as with PresignPutSized, Content-Length is signed, so
// storage refuses a part of any other length.
func (s *Store) PresignUploadPart(ctx context.Context, key, uploadID string, number int32, size int64) (PresignedURL, error) {
	if size <= 0 {
		return PresignedURL{}, fmt.Errorf("presign part %d of %s: size %d: a bound part needs at least one byte", number, key, size)
	}
	req, err := s.presign.PresignUploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
		PartNumber: aws.Int32(number), ContentLength: aws.Int64(size),
	}, s3.WithPresignExpires(s.ttl))
	if err != nil {
		return PresignedURL{}, fmt.Errorf("presign part %d of %s: %w", number, key, err)
	}
	if !signsContentLength(req.URL) {
		return PresignedURL{}, fmt.Errorf("presign part %d of %s: the signature does not cover Content-Length", number, key)
	}
	return PresignedURL{URL: req.URL, Method: req.Method, ExpiresAt: time.Now().Add(s.ttl)}, nil
}

// ListParts returns up to max parts of uploadID numbered after after, in
// order, and whether more follow.
func (s *Store) ListParts(ctx context.Context, key, uploadID string, after, max int32) (parts []Part, more bool, err error) {
	in := &s3.ListPartsInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: aws.String(uploadID), MaxParts: aws.Int32(max),
	}
	if after > 0 {
		in.PartNumberMarker = aws.String(fmt.Sprint(after))
	}
	out, err := s.client.ListParts(ctx, in)
	if err != nil {
		return nil, false, fmt.Errorf("list parts of %s: %w", key, noUpload(err))
	}
	parts = make([]Part, 0, len(out.Parts))
	for _, p := range out.Parts {
		parts = append(parts, Part{Number: aws.ToInt32(p.PartNumber), ETag: aws.ToString(p.ETag), Size: aws.ToInt64(p.Size)})
	}
	return parts, aws.ToBool(out.IsTruncated), nil
}

// AllParts lists every uploaded part of uploadID, in order.
func (s *Store) AllParts(ctx context.Context, key, uploadID string) ([]Part, error) {
	var all []Part
	var after int32
	for {
		parts, more, err := s.ListParts(ctx, key, uploadID, after, 1000)
		if err != nil {
			return nil, err
		}
		all = append(all, parts...)
		if !more || len(parts) == 0 {
			return all, nil
		}
		after = parts[len(parts)-1].Number
	}
}

// CompleteMultipart joins the parts (numbers and ETags, in order) into the
// object key.
func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) error {
	done := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		done[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag)}
	}
	_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	})
	if err != nil {
		return fmt.Errorf("complete multipart upload of %s: %w", key, noUpload(err))
	}
	return nil
}

// AbortMultipart discards uploadID and its parts. An upload storage no
// longer has (completed or already aborted) is ErrNoUpload.
func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	if err != nil {
		return fmt.Errorf("abort multipart upload of %s: %w", key, noUpload(err))
	}
	return nil
}

// DiscardUpload ends an upload that will never be completed: it aborts
// uploadID, and when storage no longer holds it (completed, or aborted
// before) deletes whatever object a completion left at key, so that an
// upload whose join was never recorded does not stay billed forever. Only
// for a key no one else writes (a multipart asset's own).
func (s *Store) DiscardUpload(ctx context.Context, key, uploadID string) error {
	err := s.AbortMultipart(ctx, key, uploadID)
	if errors.Is(err, ErrNoUpload) {
		return s.Delete(ctx, key)
	}
	return err
}

// Size returns the size of object key, ErrNoObject if it does not exist.
func (s *Store) Size(ctx context.Context, key string) (int64, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		var nf *types.NotFound
		if errors.As(err, &nf) {
			return 0, fmt.Errorf("head object %s: %w", key, ErrNoObject)
		}
		return 0, fmt.Errorf("head object %s: %w", key, err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// noUpload marks storage's NoSuchUpload with ErrNoUpload.
func noUpload(err error) error {
	var nu *types.NoSuchUpload
	var coded interface{ ErrorCode() string }
	if errors.As(err, &nu) || (errors.As(err, &coded) && coded.ErrorCode() == "NoSuchUpload") {
		return fmt.Errorf("%w: %w", ErrNoUpload, err)
	}
	return err
}

// SameETag compares two ETags as storage writes them, quoted or not.
func SameETag(a, b string) bool {
	return a != "" && strings.Trim(a, `"`) == strings.Trim(b, `"`)
}
