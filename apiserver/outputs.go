package apiserver

import (
	"encoding/json"

	"github.com/gofiber/fiber/v2"

	"github.com/mpegflow/mpegflow/internal/objstore"
)

// jobOutput is one file a job produced, with a presigned download URL.
type jobOutput struct {
	Name        string                `json:"name"`
	Kind        string                `json:"kind"`
	SizeBytes   int64                 `json:"size_bytes"`
	ContentType string                `json:"content_type"`
	Attributes  map[string]string     `json:"attributes,omitempty"`
	Download    objstore.PresignedURL `json:"download"`
}

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
	out := make([]jobOutput, 0, len(stored))
	for _, o := range stored {
		u, err := s.objects.PresignGet(c.UserContext(), o.Key)
		if err != nil {
			return err
		}
		out = append(out, jobOutput{Name: o.Name, Kind: o.Kind, SizeBytes: o.SizeBytes, ContentType: o.ContentType, Attributes: o.Attributes, Download: u})
	}
	return c.JSON(list[jobOutput]{Items: out})
}
