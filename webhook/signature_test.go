package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/mpegflow/mpegflow/webhook"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	const secret = "whsec_0123456789abcdef"
	body := []byte(`{"id":"e1","type":"job.completed"}`)
	at := time.Unix(1_800_000_000, 0)
	good := webhook.Sign(secret, at, body)

	// The recipe of docs/webhooks.md, written out with the standard library
	// only: what a receiver in another language does.
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(strconv.FormatInt(at.Unix(), 10) + "." + string(body)))
	assert.Equal(t, "t=1800000000,v1="+hex.EncodeToString(h.Sum(nil)), good)

	tests := map[string]struct {
		header string
		body   []byte
		now    time.Time
		secret string
		want   error
	}{
		"valid":                     {good, body, at.Add(time.Minute), secret, nil},
		"valid a little early":      {good, body, at.Add(-time.Minute), secret, nil},
		"rotated: second v1 counts": {good + ",v1=" + strings.Repeat("ab", 32), body, at, secret, nil},
		"body altered":              {good, []byte(`{"id":"e1","type":"job.failed"}`), at, secret, webhook.ErrMismatch},
		"other secret":              {good, body, at, "whsec_other", webhook.ErrMismatch},
		"replayed after the window": {good, body, at.Add(5*time.Minute + time.Second), secret, webhook.ErrTooOld},
		"from the future":           {good, body, at.Add(-6 * time.Minute), secret, webhook.ErrTooOld},
		"timestamp swapped":         {strings.Replace(good, "t=1800000000", "t=1800000060", 1), body, at, secret, webhook.ErrMismatch},
		"missing":                   {"", body, at, secret, webhook.ErrMissingSignature},
		"no v1":                     {"t=1800000000", body, at, secret, webhook.ErrMalformed},
		"not hex":                   {"t=1800000000,v1=zz", body, at, secret, webhook.ErrMalformed},
		"garbage":                   {"sha256=abc", body, at, secret, webhook.ErrMalformed},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(tt.secret, tt.header, tt.body, tt.now, 0)
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.want)
			assert.True(t, webhook.IsSignatureError(err))
		})
	}
}
