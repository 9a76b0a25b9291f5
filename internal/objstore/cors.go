package objstore

import (
	"context"
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Origin is the scheme and host ("https://bucket.s3.eu-west-1.amazonaws.com")
// the store's presigned URLs point at: what a browser uploading or reading
// through them connects to, and so what the web console's
// Content-Security-Policy must allow. It presigns a URL locally; no request
// is sent.
func (s *Store) Origin(ctx context.Context) (string, error) {
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String("origin")},
		s3.WithPresignExpires(s.ttl))
	if err != nil {
		return "", fmt.Errorf("objstore: presign to find the storage origin: %w", err)
	}
	u, err := url.Parse(req.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("objstore: presigned URL %q has no origin", req.URL)
	}
	return u.Scheme + "://" + u.Host, nil
}

// AllowBrowserUploads sets the bucket's CORS rules so that pages served from
// origins (the web console's) may PUT to presigned upload and part URLs and
// read the ETag storage answers, which completing a multipart upload needs.
// It replaces whatever CORS configuration the bucket had.
func (s *Store) AllowBrowserUploads(ctx context.Context, origins []string) error {
	if len(origins) == 0 {
		return fmt.Errorf("objstore: allow browser uploads: no origin given")
	}
	_, err := s.client.PutBucketCors(ctx, &s3.PutBucketCorsInput{
		Bucket: aws.String(s.bucket),
		CORSConfiguration: &types.CORSConfiguration{CORSRules: []types.CORSRule{{
			ID:             aws.String("mpegflow-console-uploads"),
			AllowedOrigins: origins,
			AllowedMethods: []string{"PUT"},
			AllowedHeaders: []string{"Content-Type"},
			ExposeHeaders:  []string{"ETag"},
			MaxAgeSeconds:  aws.Int32(3600),
		}}},
	})
	if err != nil {
		return fmt.Errorf("objstore: set the CORS rules of bucket %s: %w", s.bucket, err)
	}
	return nil
}
