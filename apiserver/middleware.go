package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

const principalKey = "mpegflow.principal"

// requestLog logs one line per request. It never logs headers or bodies, so
// keys and secrets cannot reach the log.
func (s *Server) requestLog(c *fiber.Ctx) error {
	start := time.Now()
	requestID(c) // the log handler adds it to the line
	err := c.Next()
	status := c.Response().StatusCode()
	if err != nil {
		if herr := s.app.ErrorHandler(c, err); herr != nil {
			status = fiber.StatusInternalServerError
		} else {
			status = c.Response().StatusCode()
		}
	}
	attrs := []any{
		slog.String("method", c.Method()),
		slog.String("route", c.Route().Path), slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
	}
	if p, ok := c.Locals(principalKey).(store.Principal); ok {
		attrs = append(attrs, slog.String("org_id", p.OrgID.String()), slog.String("user_id", p.UserID.String()))
	}
	s.log.InfoContext(c.UserContext(), "request", attrs...)
	return nil
}

// authenticate resolves the bearer key, or the console's session cookie
// (authenticateSession), to its principal. A key that does
// not authenticate spends from the client address's failure budget; with
// that budget empty the answer is 429 instead of 401.
func (s *Server) authenticate(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	if id := c.Cookies(sessionCookie); h == "" && id != "" && c.Query("api_key") == "" {
		return s.authenticateSession(c, id) // the console, signed in
	}
	if h == "" && c.Path() == "/ws" && c.Query("api_key") != "" {
		h = "Bearer " + c.Query("api_key") // browsers cannot set headers on WebSocket
	}
	key, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || key == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="mpegflow"`)
		return problem(fiber.StatusUnauthorized, "unauthenticated", "send an API key as 'Authorization: Bearer <key>'")
	}
	key = strings.TrimSpace(key)
	var gen uint64 // the cache's generation when the Postgres read began
	if s.keys != nil {
		p, g, ok := s.keys.lookup(key)
		if ok {
			c.Locals(principalKey, p)
			return c.Next()
		}
		gen = g
	}
	p, err := s.store.Authenticate(c.UserContext(), key)
	if errors.Is(err, store.ErrNotFound) {
		if err := s.spendFailure(c); err != nil {
			return err
		}
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="mpegflow", error="invalid_token"`)
		return problem(fiber.StatusUnauthorized, "unauthenticated", "the API key is unknown or revoked")
	}
	if err != nil {
		return err
	}
	if s.keys != nil {
		s.keys.keep(key, p, gen)
	}
	c.Locals(principalKey, p)
	return c.Next()
}

// spendFailure spends one of the client address's failed-authentication
// budget (with the budget empty: the 429 to answer instead of 401).
func (s *Server) spendFailure(c *fiber.Ctx) error {
	if s.cfg.Limiter == nil {
		return nil
	}
	return s.applyLimit(c, s.cfg.Limiter.Fail(c.UserContext(), s.clientAddr(c)))
}

// keysChanged is called after a change to who a key acts as has committed
// (a key revoked, a member's role changed or removed, an organization's
// status, plan or share weight changed): every replica forgets the
// organization's cached keys.
func (s *Server) keysChanged(ctx context.Context, org uuid.UUID) {
	if s.keys == nil {
		return
	}
	if err := s.keys.Invalidate(ctx, org); err != nil {
		s.log.WarnContext(ctx, "API keys of the organization were dropped from this replica's cache but other replicas were not told; they notice within the cache TTL. Check Redis",
			slog.String("org_id", org.String()), slog.Any("error", err))
	}
}

// limit spends one token of the key's and of the organization's budget
// (ratelimit.Limiter.Allow) before anything else is checked, so refused
// and forbidden requests cost their sender too.
func (s *Server) limit(c *fiber.Ctx) error {
	if s.cfg.Limiter == nil {
		return c.Next()
	}
	p := principal(c)
	d := s.cfg.Limiter.Allow(c.UserContext(), s.clientAddr(c), p.KeyID.String(), p.OrgID.String())
	if err := s.applyLimit(c, d); err != nil {
		return err
	}
	return c.Next()
}

// authorize checks the authenticated principal's organization and role
// against perm before the handler runs.
func (s *Server) authorize(perm auth.Permission) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p := principal(c)
		if p.OrgStatus != "active" && p.Role != auth.SuperAdmin {
			return problem(fiber.StatusForbidden, "organization-suspended", "this organization is suspended; contact support")
		}
		if !auth.Allowed(p.Role, perm) {
			return problem(fiber.StatusForbidden, "forbidden", "your role ("+string(p.Role)+") does not allow "+string(perm))
		}
		return c.Next()
	}
}

func principal(c *fiber.Ctx) store.Principal {
	p, _ := c.Locals(principalKey).(store.Principal) // set by authenticate before every handler
	return p
}
