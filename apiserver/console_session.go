package apiserver

import (
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/encodespec"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// The console's cookies (docs/console.md). The session id is HttpOnly: no
// script reads it. The CSRF token is readable by the console's own
// scripts, which repeat it in csrfHeader on every state-changing request;
// another site can neither read it nor, SameSite=Strict, have the browser
// send the session with its requests.
const (
	sessionCookie = "mpegflow_session"
	csrfCookie    = "mpegflow_csrf"
	csrfHeader    = "X-CSRF-Token"
	// defaultSessionTTL is how long a console session lasts.
	defaultSessionTTL = 12 * time.Hour
)

// signIn exchanges an API key for a console session: the answer sets the
// session's cookies, and the browser keeps no key.
func (s *Server) signIn(c *fiber.Ctx) error {
	var req apiv1.ConsoleSignIn
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	key := strings.TrimSpace(req.APIKey)
	if _, err := auth.KeyPrefix(key); err != nil {
		var errs validation.Errors
		errs.Add("api_key", "required: an API key of your organization (they start with mfk_)")
		return invalid(errs)
	}
	cs, err := s.store.CreateConsoleSession(c.UserContext(), key, s.cfg.Clock.Now(), s.sessionTTL())
	if errors.Is(err, store.ErrNotFound) {
		if err := s.spendFailure(c); err != nil {
			return err
		}
		return problem(fiber.StatusUnauthorized, "unauthenticated", "the API key is unknown or revoked")
	}
	if err != nil {
		return err
	}
	s.setSessionCookies(c, cs.ID, cs.CSRF, cs.ExpiresAt)
	s.log.InfoContext(c.UserContext(), "console signed in", slog.String("org_id", cs.Principal.OrgID.String()), slog.String("key_id", cs.Principal.KeyID.String()))
	return c.Status(fiber.StatusCreated).JSON(apiv1.ConsoleSession{OrgID: cs.Principal.OrgID.String(), Role: string(cs.Principal.Role), ExpiresAt: &cs.ExpiresAt,
		BuiltinWorkflows: encodespec.BuiltinNames()})
}

// signOut ends the browser's console session and clears its cookies.
func (s *Server) signOut(c *fiber.Ctx) error {
	if id := c.Cookies(sessionCookie); id != "" {
		if err := s.store.DeleteConsoleSession(c.UserContext(), id); err != nil {
			return err
		}
	}
	s.setSessionCookies(c, "", "", time.Unix(0, 0))
	return c.SendStatus(fiber.StatusNoContent)
}

// whoAmI tells the console who its session acts as.
func (s *Server) whoAmI(c *fiber.Ctx) error {
	p := principal(c)
	return c.JSON(apiv1.ConsoleSession{OrgID: p.OrgID.String(), Role: string(p.Role), BuiltinWorkflows: encodespec.BuiltinNames()})
}

func (s *Server) sessionTTL() time.Duration {
	if s.cfg.SessionTTL > 0 {
		return s.cfg.SessionTTL
	}
	return defaultSessionTTL
}

// setSessionCookies sets (or, with an expiry in the past, clears) the
// session's two cookies: Secure when the console is served over TLS (here,
// or by the ingress in front of it).
func (s *Server) setSessionCookies(c *fiber.Ctx, id, csrf string, expires time.Time) {
	secure := c.Protocol() == "https" || c.Get(fiber.HeaderXForwardedProto) == "https"
	c.Cookie(&fiber.Cookie{Name: sessionCookie, Value: id, Path: "/", Expires: expires, HTTPOnly: true, Secure: secure, SameSite: fiber.CookieSameSiteStrictMode})
	c.Cookie(&fiber.Cookie{Name: csrfCookie, Value: csrf, Path: "/", Expires: expires, Secure: secure, SameSite: fiber.CookieSameSiteStrictMode})
}

// authenticateSession resolves a console session cookie to its key's
// principal. A request that can change something (anything but GET and
// HEAD) must repeat the session's CSRF token in csrfHeader; a WebSocket
// upgrade must come from this server's own origin.
func (s *Server) authenticateSession(c *fiber.Ctx, id string) error {
	var csrf *string
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead:
		if origin := c.Get(fiber.HeaderOrigin); c.Path() == "/ws" && origin != "" && !sameOrigin(origin, c.BaseURL()) {
			return problem(fiber.StatusForbidden, "cross-origin", "a console session's live events are served to the console's own origin only")
		}
	default:
		token := c.Get(csrfHeader)
		csrf = &token
	}
	p, err := s.store.ConsoleSessionPrincipal(c.UserContext(), id, csrf, s.cfg.Clock.Now())
	switch {
	case errors.Is(err, store.ErrCSRF):
		return problem(fiber.StatusForbidden, "csrf", "a console request that changes something must carry the session's "+csrfHeader+" header")
	case errors.Is(err, store.ErrNotFound):
		if err := s.spendFailure(c); err != nil {
			return err
		}
		return problem(fiber.StatusUnauthorized, "unauthenticated", "the console session has ended (signed out, expired or its key revoked): sign in again")
	case err != nil:
		return err
	}
	c.Locals(principalKey, p)
	return c.Next()
}

// sameOrigin reports whether origin (an Origin header) is base's scheme and
// host.
func sameOrigin(origin, base string) bool {
	o, err := url.Parse(origin)
	if err != nil {
		return false
	}
	b, err := url.Parse(base)
	return err == nil && strings.EqualFold(o.Scheme, b.Scheme) && strings.EqualFold(o.Host, b.Host)
}
