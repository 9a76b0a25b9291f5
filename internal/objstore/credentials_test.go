package objstore_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// The tests in this file load the AWS SDK's default credential chain, which
// reads process-wide environment variables the SDK offers no option for
// (AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_WEB_IDENTITY_TOKEN_FILE, ...).
// They use t.Setenv and so do not call t.Parallel: Go runs every sequential
// top-level test before it resumes the parallel ones, so no other test sees
// these variables.

// chainEnv lists every variable the default chain reads that could find
// credentials on the machine running the tests.
var chainEnv = []string{
	"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN",
	"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
	"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_S3", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
}

// isolateChain empties the default chain: no credential variables, shared
// config files that do not exist, no instance metadata. It returns the test
// bucket's configuration without static keys.
func isolateChain(t *testing.T) (objstore.Config, [2]string) {
	t.Helper()
	withKeys := testenv.S3(t)
	for _, name := range chainEnv {
		t.Setenv(name, "") // restores the original value when the test ends
		require.NoError(t, os.Unsetenv(name))
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg := withKeys
	cfg.AccessKeyID, cfg.SecretAccessKey = "", ""
	cfg.CredentialsTimeout = 5 * time.Second
	return cfg, [2]string{withKeys.AccessKeyID, withKeys.SecretAccessKey}
}

// roundTrip uploads through a presigned PUT and reads the object back
// through a presigned GET, both checked by the test S3 server's signatures.
func roundTrip(t *testing.T, st *objstore.Store, key string) {
	t.Helper()
	put, err := st.PresignPutSized(t.Context(), key, "video/mp4", 6)
	require.NoError(t, err)
	code, body := do(t, "PUT", put.URL, "video/mp4", []byte("frames"))
	require.Equal(t, http.StatusOK, code, "%s", body)
	get, err := st.PresignGet(t.Context(), key)
	require.NoError(t, err)
	code, body = do(t, "GET", get.URL, "", nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	assert.Equal(t, "frames", string(body))
}

// TestContainerCredentials serves the test S3 keys as temporary
// credentials over the container-credentials protocol (what EKS Pod
// Identity's agent and ECS speak), behind an authorization token read from
// a file, and uploads with them. The credentials carry no session token:
// versitygw refuses X-Amz-Security-Token (InvalidToken), which only AWS
// STS-issued credentials have.
func TestContainerCredentials(t *testing.T) {
	cfg, keys := isolateChain(t)
	const token = "pod-identity-token"
	var served atomic.Int32
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != token {
			http.Error(w, `{"code":"AccessDenied","message":"bad token"}`, http.StatusUnauthorized)
			return
		}
		served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"AccessKeyId": keys[0], "SecretAccessKey": keys[1],
			"Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		})
	}))
	t.Cleanup(agent.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent.URL+"/v1/credentials")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokenFile)

	t.Run("wrong token", func(t *testing.T) {
		require.NoError(t, os.WriteFile(tokenFile, []byte("stolen"), 0o600))
		_, err := objstore.New(t.Context(), cfg)
		require.ErrorIs(t, err, objstore.ErrNoCredentials)
		assert.Zero(t, served.Load())
	})
	t.Run("agent's token", func(t *testing.T) {
		require.NoError(t, os.WriteFile(tokenFile, []byte(token), 0o600))
		st, err := objstore.New(t.Context(), cfg)
		require.NoError(t, err)
		roundTrip(t, st, "pod-identity/video.mp4")
		assert.Positive(t, served.Load())
	})
}

// TestWebIdentityCredentials exchanges a projected service-account token
// for the test S3 keys at a local STS (AssumeRoleWithWebIdentity, what EKS
// IRSA does) and uploads with them.
func TestWebIdentityCredentials(t *testing.T) {
	cfg, keys := isolateChain(t)
	const (
		jwt  = "eyJhbGciOiJSUzI1NiJ9.service-account.signature"
		role = "arn:aws:iam::123456789012:role/mpegflow-apiserver"
	)
	var assumed atomic.Int32
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.Form.Get("Action") != "AssumeRoleWithWebIdentity" || r.Form.Get("WebIdentityToken") != jwt || r.Form.Get("RoleArn") != role {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not this role</Message></Error><RequestId>1</RequestId></ErrorResponse>`)
			return
		}
		assumed.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>%s</AccessKeyId>
      <SecretAccessKey>%s</SecretAccessKey>
      <SessionToken></SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>system:serviceaccount:mpegflow:mpegflow-apiserver</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>%s/test</Arn>
      <AssumedRoleId>AROATEST:test</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`, keys[0], keys[1], time.Now().Add(time.Hour).UTC().Format(time.RFC3339), role)
	}))
	t.Cleanup(sts.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(jwt), 0o600))
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)

	t.Run("another role", func(t *testing.T) {
		t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/someone-else")
		_, err := objstore.New(t.Context(), cfg)
		require.ErrorIs(t, err, objstore.ErrNoCredentials)
		assert.Zero(t, assumed.Load())
	})
	t.Run("the pod's role", func(t *testing.T) {
		t.Setenv("AWS_ROLE_ARN", role)
		st, err := objstore.New(t.Context(), cfg)
		require.NoError(t, err)
		roundTrip(t, st, "irsa/video.mp4")
		assert.Positive(t, assumed.Load())
	})
}

// TestNoCredentials: without static keys and with nothing in the default
// chain, New fails at once and says what it tried and what to set.
func TestNoCredentials(t *testing.T) {
	cfg, _ := isolateChain(t)
	start := time.Now()
	_, err := objstore.New(t.Context(), cfg)
	require.ErrorIs(t, err, objstore.ErrNoCredentials)
	for _, hint := range []string{"S3_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "apiserver.serviceAccount.annotations"} {
		assert.Contains(t, err.Error(), hint)
	}
	assert.Less(t, time.Since(start), cfg.CredentialsTimeout, "failed within the credentials timeout")

	half := cfg
	half.AccessKeyID = "only-the-id"
	_, err = objstore.New(t.Context(), half)
	require.Error(t, err, "one static key without the other")
	assert.Contains(t, err.Error(), "S3_SECRET_ACCESS_KEY")
}

// TestCredentialsRefreshFails: credentials that expire and cannot be
// renewed (the agent refuses, as for a revoked association) make presigning
// fail with ErrNoCredentials, which the API answers as storage unavailable.
func TestCredentialsRefreshFails(t *testing.T) {
	cfg, keys := isolateChain(t)
	var refuse atomic.Bool
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			http.Error(w, `{"code":"AccessDenied","message":"association removed"}`, http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"AccessKeyId": keys[0], "SecretAccessKey": keys[1],
			// The SDK renews container credentials 5 minutes before they
			// expire: these are due for renewal 3 seconds from now.
			"Expiration": time.Now().Add(5*time.Minute + 3*time.Second).UTC().Format(time.RFC3339),
		})
	}))
	t.Cleanup(agent.Close)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent.URL)

	st, err := objstore.New(t.Context(), cfg)
	require.NoError(t, err)
	roundTrip(t, st, "refresh/video.mp4")
	refuse.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // waiting for the credentials' wall-clock expiry is the point
		_, err = st.PresignGet(t.Context(), "any")
	}
	require.ErrorIs(t, err, objstore.ErrNoCredentials)
}
