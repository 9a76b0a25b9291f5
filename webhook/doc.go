// Package webhook is what a receiver of MpegFlow webhooks needs: the
// signature scheme (Sign, Verify), the event document (Event) and an
// http.Handler that verifies, rejects replays and decodes (Handler).
//
// Every delivery is a POST with a JSON Event as its body and the header
//
//	MpegFlow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
// where the HMAC is computed with the webhook's secret (the whole string
// shown once at creation, "whsec_…", as bytes) over
//
//	<t> "." <raw request body>
//
// A receiver recomputes it over the bytes it received, compares in constant
// time, and refuses a timestamp more than the tolerance (5 minutes) away from
// its clock. Retries are signed afresh, so an old capture cannot be replayed
// after the window; within it, the event id (also in the MpegFlow-Event-Id
// header) identifies duplicates. docs/webhooks.md has the recipe in prose.
//
// MpegFlow itself signs with Sign, so this package and the server cannot
// disagree.
package webhook
