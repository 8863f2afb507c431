package handlers

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// endlessUpload is a multipart body of one file field that never ends before size bytes, made as
// it is read, so a test can offer 300 MB without holding them. read counts what the server took.
type endlessUpload struct {
	head []byte
	size int64
	read atomic.Int64
}

const uploadBoundary = "regularsboundary"

func newEndlessUpload(size int64) *endlessUpload {
	head := "--" + uploadBoundary + "\r\n" +
		"Content-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n" +
		"Content-Type: application/octet-stream\r\n\r\n"
	return &endlessUpload{head: []byte(head), size: size}
}

func (u *endlessUpload) Read(p []byte) (int, error) {
	off := u.read.Load()
	if off >= u.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off+int64(n) < u.size {
		if i := off + int64(n); i < int64(len(u.head)) {
			p[n] = u.head[i]
		} else {
			p[n] = 'A'
		}
		n++
	}
	u.read.Add(int64(n))
	return n, nil
}

// multipartTempFiles counts the files Go's form parser spills to the temporary directory.
func multipartTempFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "multipart-") {
			n++
		}
	}
	return n
}

// An unauthenticated 300 MB upload to the console login (once written to disk in full) is refused
// with 413 before it is read, whether its size is announced or not, and leaves no temporary file.
func TestConsoleFormsHaveABodyLimit(t *testing.T) {
	cc := newConsole(t)
	// A private temporary directory, so that other tests' files do not count. The handler is
	// called directly (no HTTP server), so nothing cleans a spilled file up behind the test's back.
	t.Setenv("TMPDIR", t.TempDir())

	const size = 300 << 20
	for _, tc := range []struct {
		name     string
		path     string
		announce bool // Content-Length set (else the body streams, as with chunked encoding)
	}{
		{"an announced upload to the login is refused on its header", "/console/login", true},
		{"a streamed upload to the login is cut off at the limit", "/console/login", false},
		{"a streamed upload to the logout is cut off at the limit", "/console/logout", false},
		{"a streamed upload to the campaign editor is cut off at its limit", "/console/campaigns", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := multipartTempFiles(t)
			body := newEndlessUpload(size)
			req := httptest.NewRequest(http.MethodPost, "/console/login", body)
			req.URL.Path = tc.path
			req.Header.Set("Content-Type", "multipart/form-data; boundary="+uploadBoundary)
			req.ContentLength = -1
			if tc.announce {
				req.ContentLength = size
			}
			rec := httptest.NewRecorder()
			cc.Server.ServeHTTP(rec, req)

			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413\n%s", rec.Code, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), "too large") || !strings.Contains(rec.Header().Get("Content-Type"), "text/html") {
				t.Errorf("the answer is not the console's error page: %s\n%s", rec.Header().Get("Content-Type"), rec.Body)
			}
			if limit := consoleBodyLimit(tc.path); body.read.Load() > limit+64<<10 {
				t.Errorf("the server read %d bytes, over the route's limit of %d", body.read.Load(), limit)
			}
			if tc.announce && body.read.Load() != 0 {
				t.Errorf("the server read %d bytes of a body announced too large", body.read.Load())
			}
			if after := multipartTempFiles(t); after != before {
				t.Errorf("%d multipart temporary files were written", after-before)
			}
		})
	}

	t.Run("a logged-in form over its limit gets the console's 413 page", func(t *testing.T) {
		client, csrf := cc.loginAs(t, "admin")
		res := cc.postForm(t, client, "/console/tiers", csrf, url.Values{"name.0": {strings.Repeat("x", consoleFormBodyLimit)}})
		if res.Status != http.StatusRequestEntityTooLarge || !strings.Contains(res.Body, "too large") {
			t.Fatalf("status %d, want 413 with the console's page\n%s", res.Status, res.Body)
		}
	})

	t.Run("a campaign of 1 MiB of HTML still fits the editor's form", func(t *testing.T) {
		client, csrf := cc.loginAs(t, "marketer")
		html := "<p>" + strings.Repeat("Fresh bread & cake, <b>today</b>! ", (1<<20)/36) + "</p>"
		res := cc.postForm(t, client, "/console/campaigns", csrf, url.Values{"name": {"Big"}, "subject": {"Big"}, "html": {html}})
		if res.Status == http.StatusRequestEntityTooLarge {
			t.Fatalf("a %d-byte campaign was refused as too large", len(html))
		}
	})
}
