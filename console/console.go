// Package console is MpegFlow's web console: static pages and one script,
// embedded in the binary, that speak the REST API and the WebSocket of the
// server that serves them (docs/console.md). Nothing is loaded from
// anywhere else, and the Content-Security-Policy every page carries says
// so to the browser.
package console

import (
	"embed"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

//go:embed web
var web embed.FS

// Prefix is where the console is served.
const Prefix = "/console"

// Options say what else the console's pages may reach.
type Options struct {
	// UploadSource is the source expression of the object store's
	// presigned URLs (objstore.Store.ConnectSource): the console uploads
	// files straight to it. Empty, the pages may reach no other origin.
	UploadSource string
}

// ContentSecurityPolicy allows the console's own scripts, styles, API
// calls and WebSocket, and uploads to uploadSource when set; nothing
// else: no inline script, no other origin, no framing.
func ContentSecurityPolicy(uploadSource string) string {
	connect := "'self'"
	if uploadSource != "" {
		connect += " " + uploadSource
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"media-src 'self' blob:; connect-src " + connect + "; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}

// Register serves the console under Prefix on app: Prefix itself is the
// page, Prefix/<file> its assets.
func Register(app *fiber.App, opts Options) {
	csp := ContentSecurityPolicy(opts.UploadSource)
	files, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embedded tree always has web/
	}
	serve := func(c *fiber.Ctx) error {
		name := strings.TrimPrefix(c.Path(), Prefix)
		name = strings.TrimPrefix(name, "/")
		if name == "" {
			name = "index.html"
		}
		if !fs.ValidPath(name) {
			return fiber.ErrNotFound
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return fiber.ErrNotFound
		}
		c.Set(fiber.HeaderContentSecurityPolicy, csp)
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
		c.Set(fiber.HeaderXFrameOptions, "DENY")
		c.Set(fiber.HeaderCacheControl, "no-cache")
		c.Set(fiber.HeaderContentType, mime.TypeByExtension(path.Ext(name)))
		return c.Send(body)
	}
	// Mounted, not routed: the console is static files, not an API route
	// (the route table, its permissions and the OpenAPI document are the
	// API's).
	app.Use(Prefix, func(c *fiber.Ctx) error {
		if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
			return c.Next()
		}
		return serve(c)
	})
}
