// Package consoletest drives the web console in Debian's chromium for
// tests: a headless browser that fails its test on any Content-Security-
// Policy violation or script error, and the console's common steps.
package consoletest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// Browser starts Debian's chromium headless for one test, failing it on
// any Content-Security-Policy violation or uncaught script error the pages
// report. A missing chromium fails the test, as a missing ffmpeg does:
// `make test` installs it (scripts/deps.sh).
func Browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	require.NoError(t, err, "chromium must be installed: scripts/deps.sh (make test) installs it")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 800))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	rec := &problems{}
	require.NoError(t, chromedp.Listen(ctx, rec.listen))
	return ctx, rec.list
}

// NewTab opens another tab of parent's browser (sharing its cookies, so its
// session) with its own record of Content-Security-Policy violations and
// script errors, as Browser keeps for the first.
func NewTab(t *testing.T, parent context.Context) (context.Context, func() []string) {
	t.Helper()
	rec := &problems{}
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithListener(rec.listen))
	t.Cleanup(cancel)
	return ctx, rec.list
}

// problems records what a tab's pages broke: Content-Security-Policy
// violations and uncaught script errors.
type problems struct {
	mu   sync.Mutex
	seen []string
}

func (p *problems) listen(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e := ev.(type) {
	case *log.EventEntryAdded:
		if strings.Contains(e.Entry.Text, "Content Security Policy") {
			p.seen = append(p.seen, "CSP: "+e.Entry.Text)
		}
	case *runtime.EventExceptionThrown:
		p.seen = append(p.seen, "script error: "+(&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
	}
}

func (p *problems) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// Route changes the console's page by its hash, as a click on a link does
// (a hash change is no navigation: chromedp.Navigate would wait for one).
func Route(hash string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf("location.hash = %q", hash), chromedp.EvalIgnoreExceptions)
}

// SignIn signs the console's sign-in page in with key and waits for the
// jobs list. The key is typed as a user types it into the sign-in form,
// which is marked as typed into; should the page draw a new sign-in form
// meanwhile (a route still settling on a loaded machine), the key is typed
// again into the new one. A form typed into is never typed into again
// (after a sign-in the form stays, emptied, until the jobs list replaces
// it). At most 60 s.
func SignIn(key string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		deadline := time.Now().Add(60 * time.Second)
		for {
			state, err := chromedp.Evaluate[string](`(() => {
				if (document.getElementById("jobs")) return "in";
				const form = document.getElementById("signin");
				if (!form || form.dataset.typed) return "wait";
				form.dataset.typed = "1";
				return "form";
			})()`)(ctx, target)
			if err != nil {
				return err
			}
			switch state {
			case "in":
				return nil
			case "form":
				// Bounded: the form may be replaced while it is typed into.
				tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := chromedp.Steps(
					chromedp.SendKeys(chromedp.CSS(`#signin[data-typed] #api-key`), key),
					chromedp.Click(chromedp.CSS(`#signin[data-typed] button[type=submit]`)))(tctx, target)
				cancel()
				if err != nil && ctx.Err() != nil {
					return err
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("sign-in: no jobs list after 60 s (page state %q)", state)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// TextOf reads the text of the first element sel matches in one step in
// the page ("" when none does): the pages replace rows as they update, so
// a node found by one protocol call can be gone by the next.
func TextOf(ctx context.Context, t *testing.T, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, sel)))
	require.NoError(t, err, sel)
	return v
}

// WaitText waits until the first element sel matches shows text starting
// with prefix, failing the test after within.
func WaitText(ctx context.Context, t *testing.T, sel, prefix string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		text := TextOf(ctx, t, sel)
		if strings.HasPrefix(text, prefix) {
			return
		}
		require.True(t, time.Now().Before(deadline), "%s shows %q after %s, want %q", sel, text, within, prefix)
		time.Sleep(100 * time.Millisecond)
	}
}

// SignOut signs the console out and waits for the sign-in page.
func SignOut() chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("api-key")))
}

// Screenshots is where the console tests leave their pictures
// (MPEGFLOW_CONSOLE_SCREENSHOTS, or a folder in the temporary directory).
func Screenshots(t *testing.T) string {
	dir := os.Getenv("MPEGFLOW_CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "mpegflow-console-screenshots")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// Shoot saves the page at desktop and phone widths as <name>-desktop.png
// and <name>-phone.png, and fails the test where the page is not usable
// at either width: a form control without a label, a button without a
// name, or a page wider than the screen (tables and code scroll in their
// own boxes; the page itself must not).
func Shoot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	for _, size := range []struct {
		label         string
		width, height int64
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(size.width, size.height), chromedp.Sleep(150*time.Millisecond)))
		problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](usability))
		require.NoError(t, err)
		require.Empty(t, problems, "page %s at %s width", name, size.label)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+"-"+size.label+".png"), png, 0o644))
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)))
}

// usability lists what makes the shown page hard to use: visible form
// controls without a label, buttons without a name, and a page wider than
// the window.
const usability = `(() => {
  const out = [];
  const visible = (e) => e.checkVisibility();
  for (const e of document.querySelectorAll("input, select, textarea")) {
    if (e.type === "hidden" || !visible(e)) continue;
    const named = (e.labels && e.labels.length > 0) || e.getAttribute("aria-label") || e.getAttribute("aria-labelledby");
    if (!named) out.push("unlabelled " + e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.name ? "[name=" + e.name + "]" : ""));
  }
  for (const b of document.querySelectorAll("button")) {
    if (visible(b) && !(b.textContent.trim() || b.getAttribute("aria-label"))) out.push("button without a name: " + b.outerHTML.slice(0, 120));
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    const wide = [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest(".table-wrap, pre"))
      .slice(0, 3).map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : ""));
    out.push("the page is " + document.documentElement.scrollWidth + " px wide in a " + window.innerWidth + " px window (" + wide.join(", ") + ")");
  }
  return out;
})()`
