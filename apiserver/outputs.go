package apiserver

import (
	"encoding/json"
	"fmt"

	"github.com/gofiber/fiber/v2"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/objscope"
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
	id, err := pathID(c, "job")
	if err != nil {
		return err
	}
	job, err := s.store.GetJob(c.UserContext(), principal(c).OrgID, id)
	if err != nil {
		return notFoundOr(err, "job")
	}
	var stored []storedOutput
	if err := json.Unmarshal(job.Outputs, &stored); err != nil {
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
