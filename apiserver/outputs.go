package apiserver

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/gofiber/fiber/v2"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/objscope"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/store"
)

// jobOutput is one file a job produced, with a presigned download URL.
type storedOutput struct {
	Name        string            `json:"name"`
	Kind        string            `json:"kind"`
	SizeBytes   int64             `json:"size_bytes"`
	ContentType string            `json:"content_type"`
	Key         string            `json:"key"`
	Attributes  map[string]string `json:"attributes"`
}

func (s *Server) jobOutputs(c *fiber.Ctx) error {
	job, stored, err := s.outputsOf(c)
	if err != nil {
		return err
	}
	scope := s.scopes.Own(job.OrgID)
	out := make([]apiv1.Output, 0, len(stored))
	for _, o := range stored {
		// The coordinator wrote the key under the job's organization; a row
		// changed behind the API must not presign someone else's object.
		if err := scope.CheckObject(objscope.Ref{Bucket: s.objects.Bucket(), Key: o.Key}); err != nil {
			return fmt.Errorf("job %s output %q not presigned, its stored key is outside the organization's storage (was the row changed by hand?): %w", job.ID, o.Name, err)
		}
		u, err := s.objects.PresignGet(c.UserContext(), o.Key)
		if err != nil {
			return err
		}
		out = append(out, apiv1.Output{Name: o.Name, Kind: o.Kind, SizeBytes: o.SizeBytes, ContentType: o.ContentType, Attributes: o.Attributes, Download: presignedOut(u)})
	}
	return c.JSON(apiv1.Page[apiv1.Output]{Items: out})
}

// jobFile streams one output file of a job of the caller's organization
// through the API, byte ranges included: what the console's player and
// images read, on the console's own origin, where a playlist's relative
// references resolve to this route again (a presigned URL of a playlist
// would leave its segments unsigned). Only a name among the job's outputs
// is served.
func (s *Server) jobFile(c *fiber.Ctx) error {
	name, err := url.PathUnescape(c.Params("*"))
	if err != nil || name == "" {
		return notFound("output file")
	}
	job, stored, err := s.outputsOf(c)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(stored, func(o storedOutput) bool { return o.Name == name })
	if i < 0 {
		return notFound("output file")
	}
	o := stored[i]
	if err := s.scopes.Own(job.OrgID).CheckObject(objscope.Ref{Bucket: s.objects.Bucket(), Key: o.Key}); err != nil {
		return fmt.Errorf("job %s output %q not served, its stored key is outside the organization's storage (was the row changed by hand?): %w", job.ID, o.Name, err)
	}
	obj, err := s.objects.Open(c.UserContext(), o.Key, c.Get(fiber.HeaderRange))
	switch {
	case errors.Is(err, objstore.ErrRange):
		c.Set(fiber.HeaderContentRange, fmt.Sprintf("bytes */%d", o.SizeBytes))
		return problem(fiber.StatusRequestedRangeNotSatisfiable, "range", "the file has no such range")
	case errors.Is(err, objstore.ErrNoObject):
		return notFound("output file")
	case err != nil:
		return err
	}
	c.Set(fiber.HeaderContentType, cmp.Or(o.ContentType, obj.ContentType, "application/octet-stream"))
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	c.Set(fiber.HeaderCacheControl, "private, max-age=300")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; sandbox") // a file is media, never a page
	if obj.ContentRange != "" {
		c.Set(fiber.HeaderContentRange, obj.ContentRange)
		c.Status(fiber.StatusPartialContent)
	}
	return c.SendStream(obj.Body, int(obj.ContentLength))
}

// outputsOf reads the job the path names, of the caller's organization,
// and its stored outputs.
func (s *Server) outputsOf(c *fiber.Ctx) (store.Job, []storedOutput, error) {
	id, err := pathID(c, "job")
	if err != nil {
		return store.Job{}, nil, err
	}
	job, err := s.store.GetJob(c.UserContext(), principal(c).OrgID, id)
	if err != nil {
		return store.Job{}, nil, notFoundOr(err, "job")
	}
	var stored []storedOutput
	if err := json.Unmarshal(job.Outputs, &stored); err != nil {
		return store.Job{}, nil, err
	}
	return job, stored, nil
}
