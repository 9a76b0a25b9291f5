package apiserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// UploadConfig decides how customers' bytes reach storage.
type UploadConfig struct {
	// MultipartThreshold: an asset of more bytes is uploaded in parts
	// (presigned multipart upload) instead of one presigned PUT (default
	// 100 MiB; at most 5 GiB, S3's largest single PUT).
	MultipartThreshold int64
	// PartSize is the preferred part size (default 16 MiB, from 5 MiB to
	// 5 GiB). A file that would need more than 10,000 parts of it gets
	// larger parts, whole MiBs: a 1 TiB file has parts of 105 MiB.
	PartSize int64
}

func (u *UploadConfig) defaults() error {
	u.MultipartThreshold = cmp.Or(u.MultipartThreshold, 100<<20)
	u.PartSize = cmp.Or(u.PartSize, 16<<20)
	if u.MultipartThreshold < 1 || u.MultipartThreshold > objstore.MaxPartSize {
		return fmt.Errorf("apiserver: multipart threshold %d out of range 1..%d (S3's largest single PUT)", u.MultipartThreshold, int64(objstore.MaxPartSize))
	}
	if u.PartSize < objstore.MinPartSize || u.PartSize > objstore.MaxPartSize {
		return fmt.Errorf("apiserver: part size %d out of range %d..%d (S3's part limits)", u.PartSize, objstore.MinPartSize, int64(objstore.MaxPartSize))
	}
	return nil
}

// partSize is the part size of an upload of size bytes: the preferred one,
// or the smallest whole number of MiB that keeps within MaxParts parts.
func (u UploadConfig) partSize(size int64) int64 {
	const mib = 1 << 20
	least := (size + objstore.MaxParts - 1) / objstore.MaxParts
	least = (least + mib - 1) / mib * mib
	return max(u.PartSize, least)
}

// partCount is how many parts of partSize bytes hold size bytes.
func partCount(size, partSize int64) int {
	return int((size + partSize - 1) / partSize)
}

// partBytes is the size of part n (from 1) of an upload: partSize, but the
// last part holds the rest.
func partBytes(size, partSize int64, n int) int64 {
	return min(partSize, size-int64(n-1)*partSize)
}

// createMultipartAsset opens a multipart upload in storage, then records
// the asset (no network I/O inside the insert), and answers the first
// batch of part URLs.
func (s *Server) createMultipartAsset(c *fiber.Ctx, name, contentType string, size int64) error {
	ctx := c.UserContext()
	p := principal(c)
	id := store.NewAssetID()
	key := objectKey(p.OrgID)(id)
	uploadID, err := s.objects.CreateMultipart(ctx, key, contentType)
	if err != nil {
		return err
	}
	partSize := s.cfg.Uploads.partSize(size)
	a, err := s.store.CreateUploadingAsset(ctx, store.UploadingAsset{
		ID: id, OrgID: p.OrgID, Filename: name, ContentType: contentType, SizeBytes: size,
		PartSize: partSize, ObjectKey: key, UploadID: uploadID,
	})
	if err != nil {
		if aerr := s.objects.AbortMultipart(context.WithoutCancel(ctx), key, uploadID); aerr != nil && !errors.Is(aerr, objstore.ErrNoUpload) {
			s.log.WarnContext(ctx, "a multipart upload whose asset was not recorded stays open in storage; add an AbortIncompleteMultipartUpload lifecycle rule to the bucket",
				slog.String("object_key", key), slog.Any("error", aerr))
		}
		return err
	}
	count := partCount(size, partSize)
	first := make([]int, min(count, apiv1.MaxPresignParts))
	for i := range first {
		first[i] = i + 1
	}
	parts, err := s.presignParts(ctx, a, first)
	if err != nil {
		return err
	}
	out := assetOut(a, nil, nil)
	out.Multipart = &apiv1.MultipartUpload{PartSize: partSize, PartCount: count, Parts: parts}
	return c.Status(fiber.StatusCreated).JSON(out)
}

// uploadingAsset reads the organization's asset named by the path and
// requires an open multipart upload (409 otherwise).
func (s *Server) uploadingAsset(c *fiber.Ctx) (store.Asset, error) {
	id, err := pathID(c, "asset")
	if err != nil {
		return store.Asset{}, err
	}
	a, err := s.store.GetAsset(c.UserContext(), principal(c).OrgID, id)
	if err != nil {
		return store.Asset{}, notFoundOr(err, "asset")
	}
	if a.UploadStatus == nil || *a.UploadStatus != store.UploadUploading || a.UploadID == nil || a.PartSize == nil || a.SizeBytes == nil {
		what := "was not created for a multipart upload: send its bytes with the presigned PUT it came with"
		if a.UploadStatus != nil {
			what = "has a multipart upload that is " + *a.UploadStatus + ", no longer open; create a new asset to upload again"
		}
		return store.Asset{}, problem(fiber.StatusConflict, "upload-not-open", "asset "+a.ID.String()+" "+what)
	}
	if err := s.assetInScope(a, "upload refused"); err != nil {
		return store.Asset{}, err
	}
	return a, nil
}

// presignParts presigns the given parts of a's upload, each bound to its size.
func (s *Server) presignParts(ctx context.Context, a store.Asset, numbers []int) ([]apiv1.PresignedPart, error) {
	out := make([]apiv1.PresignedPart, 0, len(numbers))
	for _, n := range numbers {
		size := partBytes(*a.SizeBytes, *a.PartSize, n)
		u, err := s.objects.PresignUploadPart(ctx, a.ObjectKey, *a.UploadID, int32(n), size)
		if err != nil {
			return nil, err
		}
		out = append(out, apiv1.PresignedPart{PartNumber: n, SizeBytes: size, Method: u.Method, URL: u.URL, ExpiresAt: u.ExpiresAt})
	}
	return out, nil
}

func (s *Server) presignUploadParts(c *fiber.Ctx) error {
	var req apiv1.PresignPartsRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := s.uploadingAsset(c)
	if err != nil {
		return err
	}
	count := partCount(*a.SizeBytes, *a.PartSize)
	var errs validation.Errors
	if len(req.PartNumbers) < 1 || len(req.PartNumbers) > apiv1.MaxPresignParts {
		errs.Add("part_numbers", "give 1 to %d part numbers per request (%d given)", apiv1.MaxPresignParts, len(req.PartNumbers))
	}
	seen := map[int]bool{}
	for i, n := range req.PartNumbers {
		switch {
		case n < 1 || n > count:
			errs.Add(fmt.Sprintf("part_numbers[%d]", i), "the upload has parts 1 to %d, not %d", count, n)
		case seen[n]:
			errs.Add(fmt.Sprintf("part_numbers[%d]", i), "part %d is asked for twice", n)
		}
		seen[n] = true
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	parts, err := s.presignParts(c.UserContext(), a, req.PartNumbers)
	if err != nil {
		return err
	}
	return c.JSON(apiv1.PresignedParts{Parts: parts})
}

func (s *Server) listUploadedParts(c *fiber.Ctx) error {
	limit, err := intParam(c, "limit", apiv1.MaxListParts, 1, apiv1.MaxListParts)
	if err != nil {
		return err
	}
	after := 0
	if cur := c.Query("cursor"); cur != "" {
		if after, err = strconv.Atoi(cur); err != nil || after < 1 || after > objstore.MaxParts {
			return invalidField("cursor", "not a cursor this server issued")
		}
	}
	a, err := s.uploadingAsset(c)
	if err != nil {
		return err
	}
	parts, more, err := s.objects.ListParts(c.UserContext(), a.ObjectKey, *a.UploadID, int32(after), int32(limit))
	if errors.Is(err, objstore.ErrNoUpload) {
		// A completion may have joined the parts without recording it:
		// record it now, and say so (the client reads the asset again).
		_, joined, err := s.recordJoined(c.UserContext(), a)
		if err != nil {
			return err
		}
		if joined {
			return problem(fiber.StatusConflict, "upload-complete", "the upload is complete: storage joined its parts, and the asset is uploaded")
		}
		return uploadGone()
	}
	if err != nil {
		return err
	}
	out := apiv1.UploadedParts{Items: make([]apiv1.UploadedPart, 0, len(parts))}
	for _, p := range parts {
		out.Items = append(out.Items, apiv1.UploadedPart{PartNumber: int(p.Number), ETag: p.ETag, SizeBytes: p.Size})
	}
	// No page can follow the upload's last part.
	if last := len(parts) - 1; more && last >= 0 && int(parts[last].Number) < partCount(*a.SizeBytes, *a.PartSize) {
		out.NextCursor = strconv.Itoa(int(parts[last].Number))
	}
	return c.JSON(out)
}

// completeUpload checks the client's list of parts against what storage
// holds (every part uploaded, at its size, with the ETag given) before it
// joins anything, joins them, checks the object's size and marks the asset
// uploaded. A refused list changes nothing: the upload stays open.
func (s *Server) completeUpload(c *fiber.Ctx) error {
	var req apiv1.CompleteUploadRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := s.uploadingAsset(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	size, partSize, uploadID := *a.SizeBytes, *a.PartSize, *a.UploadID
	count := partCount(size, partSize)
	var errs validation.Errors
	if len(req.Parts) != count {
		errs.Add("parts", "the upload has %d parts; list each once, in order from 1 (%d listed)", count, len(req.Parts))
	}
	for i, p := range req.Parts {
		if p.PartNumber != i+1 {
			errs.Add(fmt.Sprintf("parts[%d].part_number", i), "want %d: list each part once, in order from 1", i+1)
		}
		if !plausibleETag(p.ETag) {
			errs.Add(fmt.Sprintf("parts[%d].etag", i), "must be the ETag storage answered to the part's upload, such as \"9b2cf535f27731c974343645a3985328\"")
		}
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	stored, err := s.objects.AllParts(ctx, a.ObjectKey, uploadID)
	if errors.Is(err, objstore.ErrNoUpload) {
		done, joined, err := s.recordJoined(ctx, a)
		if err != nil {
			return err
		}
		if !joined {
			return uploadGone()
		}
		return c.JSON(assetOut(done, nil, nil))
	}
	if err != nil {
		return err
	}
	byNumber := make(map[int]objstore.Part, len(stored))
	for _, p := range stored {
		byNumber[int(p.Number)] = p
	}
	parts := make([]objstore.Part, len(req.Parts))
	for i, p := range req.Parts {
		got, ok := byNumber[p.PartNumber]
		want := partBytes(size, partSize, p.PartNumber)
		switch {
		case !ok:
			errs.Add(fmt.Sprintf("parts[%d].part_number", i), "part %d was not uploaded; upload it (POST /v1/assets/%s/upload/parts gives its URL), then complete again", p.PartNumber, a.ID)
		case got.Size != want:
			errs.Add(fmt.Sprintf("parts[%d].part_number", i), "part %d holds %d bytes, want %d; upload it again", p.PartNumber, got.Size, want)
		case !objstore.SameETag(got.ETag, p.ETag):
			errs.Add(fmt.Sprintf("parts[%d].etag", i), "is not the ETag of part %d as stored; send the ETag its upload answered (GET /v1/assets/%s/upload/parts lists them)", p.PartNumber, a.ID)
		}
		parts[i] = objstore.Part{Number: int32(p.PartNumber), ETag: got.ETag}
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	if err := s.objects.CompleteMultipart(ctx, a.ObjectKey, uploadID, parts); err != nil {
		if errors.Is(err, objstore.ErrNoUpload) {
			return problem(fiber.StatusConflict, "upload-not-open", "storage no longer holds this upload (aborted meanwhile); create a new asset to upload again")
		}
		return err
	}
	got, err := s.objects.Size(ctx, a.ObjectKey)
	if err != nil {
		return err
	}
	if got != size {
		// Parts bound to their sizes cannot add up to another size; should
		// storage disagree, the object is not kept as the asset's content.
		s.discard(ctx, a, "its joined object has the wrong size")
		if _, err := s.store.EndUpload(ctx, a.OrgID, a.ID, uploadID, store.UploadAborted); err != nil {
			return err
		}
		return invalidField("parts", "the joined object has %d bytes, not the asset's size_bytes %d; the upload is aborted, create a new asset", got, size)
	}
	done, err := s.store.EndUpload(ctx, a.OrgID, a.ID, uploadID, store.UploadUploaded)
	if err != nil {
		if done, err = s.joinedNotRecorded(ctx, a, err); err != nil {
			return err
		}
	}
	return c.JSON(assetOut(done, nil, nil))
}

// joinedNotRecorded handles a completion whose parts storage joined but
// whose asset row did not become uploaded (err from EndUpload). The object
// goes only when the asset's upload ended meanwhile (aborted, expired):
// its state wins. When another completion of the same upload recorded it
// first, the object is the asset's and the asset is returned. Any other
// failure (the database's) keeps the object, and the error is returned:
// completing again, or listing the parts, finds the upload gone from
// storage and records the join (recordJoined).
func (s *Server) joinedNotRecorded(ctx context.Context, a store.Asset, err error) (store.Asset, error) {
	if !errors.Is(err, store.ErrConflict) {
		return store.Asset{}, err
	}
	cur, gerr := s.store.GetAsset(ctx, a.OrgID, a.ID)
	if gerr != nil {
		return store.Asset{}, gerr
	}
	if cur.UploadStatus != nil && *cur.UploadStatus == store.UploadUploaded {
		return cur, nil
	}
	s.discard(ctx, a, "its upload ended while it was being completed")
	return store.Asset{}, err
}

// recordJoined looks at an uploading asset whose upload storage no longer
// holds. A completion that joined the parts but could not record it (the
// database failed, the client gave up waiting) leaves the whole object in
// place: only a completion writes a multipart asset's key, so an object of
// the asset's size there is that join, and the asset becomes uploaded
// (joined true). No such object: the upload was aborted in storage, and
// nothing changes (joined false).
func (s *Server) recordJoined(ctx context.Context, a store.Asset) (done store.Asset, joined bool, err error) {
	got, err := s.objects.Size(ctx, a.ObjectKey)
	if errors.Is(err, objstore.ErrNoObject) || (err == nil && got != *a.SizeBytes) {
		return store.Asset{}, false, nil
	}
	if err != nil {
		return store.Asset{}, false, err
	}
	done, err = s.store.EndUpload(ctx, a.OrgID, a.ID, *a.UploadID, store.UploadUploaded)
	if err != nil {
		done, err = s.joinedNotRecorded(ctx, a, err)
	}
	return done, err == nil, err
}

// uploadGone answers a request about an upload storage no longer holds.
func uploadGone() error {
	return problem(fiber.StatusConflict, "upload-not-open", "storage no longer holds this upload; create a new asset to upload again")
}

// discard deletes the object of an asset whose upload did not end as
// uploaded; a failure is logged (the object is unreachable through the API).
func (s *Server) discard(ctx context.Context, a store.Asset, why string) {
	if err := s.objects.Delete(context.WithoutCancel(ctx), a.ObjectKey); err != nil {
		s.log.WarnContext(ctx, "an object no asset owns stays in storage ("+why+"); delete it by hand",
			slog.String("asset_id", a.ID.String()), slog.String("object_key", a.ObjectKey), slog.Any("error", err))
	}
}

// abortUpload ends the asset's upload as aborted, then discards its parts
// in storage. The row is marked first: should storage fail, the Stale
// Upload Sweeper aborts the upload later.
func (s *Server) abortUpload(c *fiber.Ctx) error {
	a, err := s.uploadingAsset(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	done, err := s.store.EndUpload(ctx, a.OrgID, a.ID, *a.UploadID, store.UploadAborted)
	if err != nil {
		return err
	}
	if err := abortInStorage(ctx, s.objects, s.store, a.ID, a.ObjectKey, *a.UploadID); err != nil {
		s.log.WarnContext(ctx, "storage did not abort a multipart upload; the Stale Upload Sweeper retries, check storage if this repeats",
			slog.String("asset_id", a.ID.String()), slog.Any("error", err))
	} else {
		done.UploadID = nil
	}
	return c.JSON(assetOut(done, nil, nil))
}

// abortInStorage discards an upload in storage (one already gone counts as
// discarded) and records that storage holds it no more.
func abortInStorage(ctx context.Context, objects *objstore.Store, st *store.Store, id uuid.UUID, key, uploadID string) error {
	if err := objects.DiscardUpload(ctx, key, uploadID); err != nil {
		return err
	}
	return st.ClearUploadID(ctx, id, uploadID)
}

// plausibleETag reports whether e looks like an ETag storage gives a part:
// letters, digits and dashes (S3 writes an MD5 in hex), optionally quoted.
func plausibleETag(e string) bool {
	e = strings.TrimSuffix(strings.TrimPrefix(e, `"`), `"`)
	if e == "" || len(e) > 128 {
		return false
	}
	for _, r := range e {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '-':
		default:
			return false
		}
	}
	return true
}
