// Package browsertest drives the web pages in a real headless Chromium (Debian's chromium,
// installed by .ci/run) for the tests of handlers and cmd/regulars. It is imported by tests only.
package browsertest

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/regulars/regulars/models/dbtest"
)

// ChromiumPath finds chromium. Without one the test fails with a clear line, unless
// REGULARS_TEST_SKIP_BROWSER=1: the browser tests are part of the suite.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("REGULARS_TEST_SKIP_BROWSER") == "1" {
		t.Skip("no chromium and REGULARS_TEST_SKIP_BROWSER=1")
	}
	t.Fatal("no chromium on PATH: install it (apt-get install chromium) or set REGULARS_TEST_SKIP_BROWSER=1")
	return ""
}

// New opens a width×height page (412×915 a phone, 1024×768 a tablet, 1280×900 a laptop) in the
// test binary's one headless Chromium, started on first use. The page has a browser context of
// its own (no cookies or storage shared with other tests) and is closed when the test ends. A
// non-empty lang is what the page asks the server in (Accept-Language).
func New(t testing.TB, width, height int, lang string) context.Context {
	t.Helper()
	browserCtx, err := shared.get(ChromiumPath(t))
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// A browser context of its own, in a window of its own: headless Chromium refuses a tab in
	// a new browser context without a new window ("no browser is open"), so chromedp's
	// WithNewBrowserContext cannot be used.
	browser := cdp.WithExecutor(browserCtx, chromedp.FromContext(browserCtx).Browser)
	contextID, err := target.CreateBrowserContext().Do(browser)
	if err != nil {
		t.Fatalf("open a chromium page: %v", err)
	}
	targetID, err := target.CreateTarget("about:blank").WithBrowserContextID(contextID).WithNewWindow(true).Do(browser)
	if err != nil {
		t.Fatalf("open a chromium page: %v", err)
	}
	ctx, cancelTab := chromedp.NewContext(browserCtx, chromedp.WithTargetID(targetID))
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab() // closes the page
		_ = target.DisposeBrowserContext(contextID).Do(browser)
	})
	start := []chromedp.Action{chromedp.EmulateViewport(int64(width), int64(height))}
	if lang != "" {
		start = append(start, network.Enable(), network.SetExtraHTTPHeaders(network.Headers{"Accept-Language": lang}))
	}
	if err := chromedp.Run(ctx, start...); err != nil {
		t.Fatalf("open a chromium page: %v", err)
	}
	return ctx
}

// shared is the test binary's one Chromium. Starting a browser costs about a second of CPU, and
// a browser killed rather than closed leaves its profile and singleton folders in the temp dir,
// so every test gets a page of this one, and dbtest.Main closes it after the last test.
var shared browser

type browser struct {
	mu     sync.Mutex
	ctx    context.Context // the first tab; its cancel closes the browser
	cancel func()
	dir    string // the profile and Chromium's TMPDIR, removed when the browser is closed
	err    error
}

func (b *browser) get(execPath string) (context.Context, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx != nil || b.err != nil {
		return b.ctx, b.err
	}
	removeStaleDirs()
	dir, err := os.MkdirTemp("", dirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		b.err = err
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		// Chromium's own temporary files (its singleton socket folder, shared memory) go in dir
		// too, so that removing dir leaves nothing behind.
		chromedp.Env("TMPDIR="+dir),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	if err := chromedp.Run(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		_ = os.RemoveAll(dir)
		b.err = err
		return nil, err
	}
	b.ctx, b.dir = ctx, dir
	b.cancel = func() {
		// A graceful close lets Chromium remove its own files and stop its helper processes
		// before the folder goes; killing it is the fallback.
		closeCtx, cancelClose := context.WithTimeout(ctx, 10*time.Second)
		_ = chromedp.Cancel(closeCtx)
		cancelClose()
		cancelCtx()
		cancelAlloc()
		removeDir(dir)
	}
	dbtest.AfterTests(Close)
	return ctx, nil
}

// Close closes the shared browser and removes its folder. dbtest.Main calls it after the tests;
// a test binary without dbtest.Main may call it from its own TestMain.
func Close() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cancel != nil {
		shared.cancel()
	}
	shared.ctx, shared.cancel, shared.err = nil, nil, nil
}

// dirPrefix names the browser folders in the temp dir: regulars-chromium-<pid>-<random>.
const dirPrefix = "regulars-chromium-"

// removeDir removes dir, again for a moment if Chromium's last helper processes still write into
// it while they exit.
func removeDir(dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := os.RemoveAll(dir)
		if _, statErr := os.Lstat(dir); err == nil && errors.Is(statErr, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeStaleDirs removes the browser folders of test binaries that died without closing their
// browser (killed by a timeout or by hand): those whose pid no longer runs.
func removeStaleDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range matches {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(dir), dirPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.RemoveAll(dir)
		}
	}
}

// Screenshot saves the whole page as name and checks it is a real picture of a page: into the
// repository's docs/screenshots with REGULARS_UPDATE_SCREENSHOTS=1 (how the README's pictures are
// made), into a temporary folder otherwise.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := t.TempDir()
	if os.Getenv("REGULARS_UPDATE_SCREENSHOTS") == "1" {
		dir = filepath.Join(moduleRoot(t), "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var buf []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&buf, 100)); err != nil { // quality 100 gives a PNG
		t.Fatalf("screenshot %s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 300 {
		t.Fatalf("screenshot %s is %dx%d", name, b.Dx(), b.Dy())
	}
	if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// moduleRoot is the folder of go.mod above the test's working directory (its package folder).
func moduleRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}
