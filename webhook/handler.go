package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// Handler is an http.Handler for a webhook endpoint: it reads the body
// (at most MaxBody bytes), verifies the signature, answers 401 to a bad or
// stale one, decodes the Event and calls OnEvent. An event id already
// handled within the replay window is answered 200 without calling OnEvent
// again (MpegFlow retries when it did not see your 2xx). OnEvent's error
// answers 500, so MpegFlow retries later.
type Handler struct {
	Secret    string
	OnEvent   func(ctx context.Context, e Event) error
	Tolerance time.Duration    // DefaultTolerance when 0
	MaxBody   int64            // 1 MiB when 0
	Now       func() time.Time // time.Now when nil

	mu   sync.Mutex
	seen map[string]time.Time
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	tol := h.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	limit := h.MaxBody
	if limit <= 0 {
		limit = 1 << 20
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil || int64(len(body)) > limit {
		http.Error(w, "body unreadable or too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err := Verify(h.Secret, r.Header.Get(SignatureHeader), body, now(), tol); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var e Event
	if err := json.Unmarshal(body, &e); err != nil || e.ID == "" {
		http.Error(w, "body is not an MpegFlow event", http.StatusBadRequest)
		return
	}
	if h.duplicate(e.ID, now(), tol) {
		w.WriteHeader(http.StatusOK)
		return
	}
	if err := h.OnEvent(r.Context(), e); err != nil {
		h.forget(e.ID)
		http.Error(w, "event not handled", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// duplicate records id and reports whether it was seen within twice the
// tolerance (older entries are dropped: their signatures expired anyway).
func (h *Handler) duplicate(id string, now time.Time, tol time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen == nil {
		h.seen = map[string]time.Time{}
	}
	for k, at := range h.seen {
		if now.Sub(at) > 2*tol {
			delete(h.seen, k)
		}
	}
	if _, ok := h.seen[id]; ok {
		return true
	}
	h.seen[id] = now
	return false
}

func (h *Handler) forget(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.seen, id)
}

// IsSignatureError reports whether err is one of Verify's failures.
func IsSignatureError(err error) bool {
	return errors.Is(err, ErrMissingSignature) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooOld) || errors.Is(err, ErrMismatch)
}
