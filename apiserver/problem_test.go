package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/objstore"
)

// TestStorageCredentialsUnavailable: when the server's storage credentials
// cannot be renewed, a request that presigns answers 503 storage-unavailable
// with a Retry-After, and the SDK's message reaches only the log.
func TestStorageCredentialsUnavailable(t *testing.T) {
	t.Parallel()
	var logged bytes.Buffer
	s := &Server{log: slog.New(slog.NewJSONHandler(&logged, nil))}
	sdk := errors.New("operation error STS: AssumeRoleWithWebIdentity, https response error StatusCode: 403, api error AccessDenied")
	app := fiber.New(fiber.Config{ErrorHandler: s.errorHandler})
	app.Post("/v1/assets", func(*fiber.Ctx) error {
		return fmt.Errorf("presign put orgs/x/y: %w", fmt.Errorf("%w: refresh: %w", objstore.ErrNoCredentials, sdk))
	})
	resp, err := app.Test(httptest.NewRequest("POST", "/v1/assets", nil), -1)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "30", resp.Header.Get("Retry-After"))
	var p Problem
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	assert.Equal(t, "urn:mpegflow:problem:storage-unavailable", p.Type)
	assert.Equal(t, "object storage is unavailable; retry later", p.Detail)
	assert.Contains(t, logged.String(), "AssumeRoleWithWebIdentity", "the cause is logged")
	assert.Contains(t, logged.String(), "pod identity", "the log says what to check")
}
