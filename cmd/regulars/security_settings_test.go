package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// serveWith runs `regulars serve` with env against a database nobody listens on, so that it stops
// right after its start-up checks: the error says which check stopped it.
func serveWith(t *testing.T, env map[string]string) error {
	t.Helper()
	full := map[string]string{
		"REGULARS_DATABASE_URL": "postgres://regulars@127.0.0.1:1/regulars?connect_timeout=2&sslmode=disable",
		"REGULARS_DATA_DIR":     t.TempDir(),
		"REGULARS_HTTP_ADDR":    "127.0.0.1:0",
		"REGULARS_LOG_LEVEL":    "error",
	}
	for k, v := range env {
		full[k] = v
	}
	var stdout, stderr bytes.Buffer
	return run(context.Background(), []string{"serve"}, func(k string) string { return full[k] },
		strings.NewReader(""), &stdout, &stderr)
}

// A short REGULARS_SECRET (the README's compose example once let a forged preferences token
// export a member) stops serve with one line saying how to make a good one; a good or generated
// secret gets past the check (to the database, which is not there).
func TestServeRefusesAWeakSecret(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, secret, wantErr string
	}{
		{"a short secret", "s3cr3t", "REGULARS_SECRET is 6 bytes; it must be at least 32"},
		{"31 bytes", strings.Repeat("a", 31), "REGULARS_SECRET is 31 bytes; it must be at least 32"},
		{"the README's old example", "change-me-to-32-random-bytes-of-hex", "REGULARS_SECRET is an example placeholder"},
		{"32 random bytes of hex", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ""},
		{"exactly 32 bytes", strings.Repeat("k", 32), ""},
		{"none: one is generated", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := serveWith(t, map[string]string{"REGULARS_SECRET": tc.secret})
			if err == nil {
				t.Fatal("serve started against a database that is not there")
			}
			if tc.wantErr != "" {
				if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "openssl rand -hex 32") ||
					strings.Contains(err.Error(), "\n") {
					t.Errorf("got %q, want one line containing %q and how to make a secret", err, tc.wantErr)
				}
				return
			}
			// Past the secret check, stopped where the database should be (friendly.go words it).
			if msg := strings.ToLower(err.Error()); strings.Contains(msg, "regulars_secret") ||
				!strings.Contains(msg, "database") && !strings.Contains(msg, "postgresql") {
				t.Errorf("serve stopped with %q, want it past the secret check, at the database", err)
			}
		})
	}

	t.Run("the generated secret is 32 random bytes, kept in the data dir", func(t *testing.T) {
		c := config{DataDir: t.TempDir()}
		if err := c.ensureSecret(); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(c.Secret) {
			t.Errorf("generated secret %q, want 64 hex digits", c.Secret)
		}
		kept, err := os.ReadFile(filepath.Join(c.DataDir, "secret"))
		if err != nil || strings.TrimSpace(string(kept)) != c.Secret {
			t.Errorf("kept %q (%v), want the generated secret", kept, err)
		}
		again := config{DataDir: c.DataDir}
		if err := again.ensureSecret(); err != nil || again.Secret != c.Secret {
			t.Errorf("second start: %q (%v), want the kept secret", again.Secret, err)
		}
	})
}

// REGULARS_TRUSTED_PROXIES is read as CIDRs; anything else stops serve with a line naming it.
// HSTS follows the base URL's scheme.
func TestTrustedProxiesAndHSTSSettings(t *testing.T) {
	t.Parallel()
	const good = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name, proxies, wantErr string
		want                   []string
	}{
		{"none by default", "", "", nil},
		{"one range", "10.0.0.0/8", "", []string{"10.0.0.0/8"}},
		{"several, with spaces, IPv6 too", " 10.0.0.0/8, 192.0.2.7/32 ,2001:db8::/32", "", []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"}},
		{"a bare address", "10.0.0.5", `REGULARS_TRUSTED_PROXIES must be CIDRs separated by commas, such as 10.0.0.0/8 or 192.0.2.7/32, not "10.0.0.5"`, nil},
		{"a word", "10.0.0.0/8,loopback", `not "loopback"`, nil},
		{"a bad mask", "10.0.0.0/33", `not "10.0.0.0/33"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantErr != "" {
				err := serveWith(t, map[string]string{"REGULARS_SECRET": good, "REGULARS_TRUSTED_PROXIES": tc.proxies})
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("serve: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			c, err := loadConfig(func(k string) string {
				return map[string]string{"REGULARS_TRUSTED_PROXIES": tc.proxies}[k]
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range c.TrustedProxies {
				got = append(got, n.String())
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("trusted %v, want %v", got, tc.want)
			}
		})
	}

	for base, want := range map[string]bool{"https://club.example": true, "HTTPS://club.example/": true,
		"http://club.example": false, "": false} {
		c, err := loadConfig(func(k string) string { return map[string]string{"REGULARS_BASE_URL": base}[k] })
		if err == nil {
			err = c.validate()
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := c.httpsBaseURL(); got != want {
			t.Errorf("base URL %q: HSTS %v, want %v", base, got, want)
		}
	}
}
