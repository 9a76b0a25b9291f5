package apiserver

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"

	"github.com/gofiber/fiber/v2"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/contentkey"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// jobKey answers the raw 16-byte content key of one of the organization's
// encrypted jobs: the URI of the EXT-X-KEY tags of its HLS playlists.
func (s *Server) jobKey(c *fiber.Ctx) error {
	k, err := s.contentKey(c)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	return c.Send(k.Value)
}

// clearKeyLicense answers a W3C ClearKey license request for one of the
// organization's encrypted jobs: the DASH MPD's license server.
func (s *Server) clearKeyLicense(c *fiber.Ctx) error {
	var req apiv1.ClearKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var errs validation.Errors
	if req.Type != "" && req.Type != apiv1.ClearKeyTemporary {
		errs.Add("type", "only %q sessions are served, got %q", apiv1.ClearKeyTemporary, req.Type)
	}
	switch n := len(req.KIDs); {
	case n == 0:
		errs.Add("kids", "required: the key IDs the player needs (unpadded base64url)")
	case n > apiv1.MaxClearKeyRequest:
		errs.Add("kids", "at most %d key IDs, got %d", apiv1.MaxClearKeyRequest, n)
	}
	wanted := make(map[string]bool, len(req.KIDs))
	for i, kid := range req.KIDs {
		if b, err := base64.RawURLEncoding.DecodeString(kid); err != nil || len(b) != 16 {
			errs.Add(fmt.Sprintf("kids[%d]", i), "want 16 bytes in unpadded base64url (22 characters)")
		}
		wanted[kid] = true
	}
	if err := errs.Err(); err != nil {
		return invalid(errs)
	}
	k, err := s.contentKey(c)
	if err != nil {
		return err
	}
	jwk := k.JWK()
	if !wanted[jwk.Kid] {
		return problem(fiber.StatusNotFound, "not-found", "the job has no key with the key IDs asked for")
	}
	return c.JSON(apiv1.ClearKeyLicense{Keys: []apiv1.ClearKeyJWK{jwk}, Type: apiv1.ClearKeyTemporary})
}

// contentKey reads and opens the key of the job in the path, scoped to the
// caller's organization. Keys are never cached by clients or proxies, and
// every key served is logged by key ID (never the key).
func (s *Server) contentKey(c *fiber.Ctx) (contentkey.Key, error) {
	id, err := pathID(c, "job")
	if err != nil {
		return contentkey.Key{}, err
	}
	if s.cfg.ContentKeys == nil {
		return contentkey.Key{}, problem(fiber.StatusServiceUnavailable, "content-keys-unavailable", "this server holds no server secret to open content keys with")
	}
	p := principal(c)
	row, err := s.store.ContentKey(c.UserContext(), p.OrgID, id)
	if err != nil {
		return contentkey.Key{}, notFoundOr(err, "content key (the job is not encrypted, not yours, or has not started)")
	}
	value, err := s.cfg.ContentKeys.Open(id, row.SealedKey)
	if errors.Is(err, contentkey.ErrUnsealable) {
		s.log.ErrorContext(c.UserContext(), "a stored content key does not open; was MPEGFLOW_SERVER_SECRET changed since the job ran?",
			slog.String("job_id", id.String()), slog.String("kid", row.KID.String()))
	}
	if err != nil {
		return contentkey.Key{}, fmt.Errorf("open content key: %w", err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	k := contentkey.Key{ID: row.KID, Value: value}
	s.log.InfoContext(c.UserContext(), "content key served", slog.String("job_id", id.String()), slog.Any("key", k))
	return k, nil
}
