package apiserver

import (
	"errors"
	"fmt"
	"mime"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/objscope"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

const maxAssetBytes = 1 << 40 // 1 TiB, far beyond any single source file

// objectKey keeps user-chosen names out of storage paths.
func objectKey(orgID uuid.UUID) func(uuid.UUID) string {
	return func(id uuid.UUID) string { return "orgs/" + orgID.String() + "/assets/" + id.String() + "/source" }
}

func (s *Server) createAsset(c *fiber.Ctx) error {
	var req apiv1.AssetRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var errs validation.Errors
	name := req.Filename
	if p := validation.FilenameProblem(name); p != "" {
		errs.Add("filename", "%s", p)
	}
	ct := req.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil || len(ct) > 255 {
		errs.Add("content_type", "must be a media type such as video/mp4")
	}
	switch {
	case req.SizeBytes == nil:
		errs.Add("size_bytes", "is required: the upload URL admits exactly this many bytes")
	case *req.SizeBytes < 1 || *req.SizeBytes > maxAssetBytes:
		// An empty file is neither a video nor a manifest, and a zero
		// Content-Length cannot be signed.
		errs.Add("size_bytes", "must be between 1 and %d", int64(maxAssetBytes))
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	if *req.SizeBytes > s.cfg.Uploads.MultipartThreshold {
		return s.createMultipartAsset(c, name, ct, *req.SizeBytes)
	}
	p := principal(c)
	a, err := s.store.CreateAsset(c.UserContext(), p.OrgID, name, ct, req.SizeBytes, objectKey(p.OrgID))
	if err != nil {
		return err
	}
	up, err := s.objects.PresignPutSized(c.UserContext(), a.ObjectKey, a.ContentType, *req.SizeBytes)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(assetOut(a, &up, nil))
}

func (s *Server) listAssets(c *fiber.Ctx) error {
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	as, err := s.store.ListAssets(c.UserContext(), principal(c).OrgID, page)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(as, page, func(a store.Asset) (time.Time, uuid.UUID) { return a.CreatedAt, a.ID }, assetListItem))
}

func (s *Server) getAsset(c *fiber.Ctx) error {
	id, err := pathID(c, "asset")
	if err != nil {
		return err
	}
	a, err := s.store.GetAsset(c.UserContext(), principal(c).OrgID, id)
	if err != nil {
		return notFoundOr(err, "asset")
	}
	if err := s.assetInScope(a, "not presigned"); err != nil {
		return err
	}
	down, err := s.objects.PresignGet(c.UserContext(), a.ObjectKey)
	if err != nil {
		return err
	}
	return c.JSON(assetOut(a, nil, &down))
}

func (s *Server) deleteAsset(c *fiber.Ctx) error {
	id, err := pathID(c, "asset")
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	a, err := s.store.DeletableAsset(ctx, principal(c).OrgID, id)
	if err != nil {
		return notFoundOr(err, "asset")
	}
	if err := s.assetInScope(a, "not deleted"); err != nil {
		return err
	}
	// Storage first, outside any transaction: if it refuses, the asset
	// stays whole and the request can be repeated.
	if a.UploadID != nil { // parts of an open (or not yet discarded) multipart upload
		if err := s.objects.AbortMultipart(ctx, a.ObjectKey, *a.UploadID); err != nil && !errors.Is(err, objstore.ErrNoUpload) {
			return err
		}
	}
	if err := s.objects.Delete(ctx, a.ObjectKey); err != nil {
		return err
	}
	if err := s.store.DeleteAsset(ctx, a.OrgID, id); err != nil {
		// A job submitted with this input in the moment since the check
		// keeps the row (409); its object is gone, so that job fails
		// reading its input and deleting again finishes the deletion.
		return notFoundOr(err, "asset")
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// assetInScope checks, before storage is touched for an asset, that its
// stored key lies inside its organization's storage; refused says what was
// not done (a row changed behind the API is never acted on).
func (s *Server) assetInScope(a store.Asset, refused string) error {
	if err := s.scopes.Own(a.OrgID).CheckObject(objscope.Ref{Bucket: s.objects.Bucket(), Key: a.ObjectKey}); err != nil {
		return fmt.Errorf("asset %s %s, its stored key is outside the organization's storage (was the row changed by hand?): %w", a.ID, refused, err)
	}
	return nil
}
