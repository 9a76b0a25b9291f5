package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of a delivery.
const (
	SignatureHeader = "MpegFlow-Signature"
	EventIDHeader   = "MpegFlow-Event-Id"
	EventTypeHeader = "MpegFlow-Event-Type"
	DeliveryHeader  = "MpegFlow-Delivery-Id"
)

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock: the replay window.
const DefaultTolerance = 5 * time.Minute

// Verification failures; Verify wraps one of them.
var (
	ErrMissingSignature = errors.New("webhook: no signature")
	ErrMalformed        = errors.New("webhook: malformed signature header")
	ErrTooOld           = errors.New("webhook: timestamp outside the tolerance (replayed or clock skew)")
	ErrMismatch         = errors.New("webhook: signature does not match the body")
)

func mac(secret string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the MpegFlow-Signature header value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := t.Unix()
	return "t=" + strconv.FormatInt(ts, 10) + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

// Verify checks a MpegFlow-Signature header against the raw body under
// secret: the timestamp must be within tolerance of now (DefaultTolerance
// when tolerance is 0) and one of the v1 signatures must match. Several v1
// entries are accepted so a secret can be rotated without a gap.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if strings.TrimSpace(header) == "" {
		return ErrMissingSignature
	}
	var (
		ts     int64
		haveTS bool
		sigs   [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: %q has no '='", ErrMalformed, part)
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: timestamp %q: %w", ErrMalformed, v, err)
			}
			ts, haveTS = n, true
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return fmt.Errorf("%w: v1 is not a hex SHA-256", ErrMalformed)
			}
			sigs = append(sigs, b)
		}
	}
	if !haveTS || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=…,v1=…", ErrMalformed)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s from now", ErrTooOld, d.Round(time.Second))
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrMismatch
}
