// Package browsertest drives the web pages in a real headless Chromium (Debian's chromium,
// installed by .ci/run) for the tests of handlers and cmd/regulars. It is imported by tests only.
package browsertest

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
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

// New starts a headless Chromium with a width×height window (412×915 a phone, 1024×768 a
// tablet, 1280×900 a laptop), stopped when the test ends. A non-empty lang is what the browser
// asks pages in (Accept-Language).
func New(t testing.TB, width, height int, lang string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(width, height),
	)
	if lang != "" {
		opts = append(opts, chromedp.Flag("lang", lang))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	var start []chromedp.Action
	if lang != "" {
		start = append(start, network.Enable(), network.SetExtraHTTPHeaders(network.Headers{"Accept-Language": lang}))
	}
	if err := chromedp.Run(ctx, start...); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
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
