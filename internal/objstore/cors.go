package objstore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

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
