package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/models/dbtest"
)

// writeDKIMKey writes a fresh Ed25519 private key as PKCS#8 PEM and returns its file and public key.
func writeDKIMKey(t *testing.T) (string, ed25519.PublicKey) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, pub
}

func TestDKIMSettingsAreCheckedAtStart(t *testing.T) {
	t.Parallel()
	keyFile, _ := writeDKIMKey(t)
	notAKey := filepath.Join(t.TempDir(), "not-a-key.pem")
	if err := os.WriteFile(notAKey, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
		signed  bool
	}{
		{"no DKIM by default", nil, "", false},
		{"a key and a selector sign", map[string]string{"REGULARS_DKIM_KEY_FILE": keyFile, "REGULARS_DKIM_SELECTOR": "regulars"}, "", true},
		{"a key without a selector is refused", map[string]string{"REGULARS_DKIM_KEY_FILE": keyFile}, "must be set together", false},
		{"a selector without a key is refused", map[string]string{"REGULARS_DKIM_SELECTOR": "regulars"}, "must be set together", false},
		{"a selector that is no DNS label is refused", map[string]string{"REGULARS_DKIM_KEY_FILE": keyFile, "REGULARS_DKIM_SELECTOR": "a b"}, "REGULARS_DKIM_SELECTOR", false},
		{"a missing key file is refused", map[string]string{"REGULARS_DKIM_KEY_FILE": keyFile + ".missing", "REGULARS_DKIM_SELECTOR": "regulars"}, "REGULARS_DKIM_KEY_FILE", false},
		{"a file that is no key is refused", map[string]string{"REGULARS_DKIM_KEY_FILE": notAKey, "REGULARS_DKIM_SELECTOR": "regulars"}, "is not a PEM RSA or Ed25519 private key", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			opts, err := c.dkimOptions()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := len(opts) > 0; got != tc.signed {
				t.Errorf("signing %v, want %v", got, tc.signed)
			}
		})
	}
}

func TestServeRefusesABadDKIMKeyWithOneLine(t *testing.T) {
	t.Parallel()
	notAKey := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(notAKey, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"REGULARS_DATABASE_URL=" + dbtest.URL(t), "REGULARS_DATA_DIR=" + t.TempDir(),
		"REGULARS_HTTP_ADDR=" + freeAddr(t), "REGULARS_DKIM_KEY_FILE=" + notAKey, "REGULARS_DKIM_SELECTOR=regulars"}
	stdout, stderr, err := runRegulars(t, env, "serve")
	if err == nil {
		t.Fatalf("serve started with a bad DKIM key")
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "regulars: REGULARS_DKIM_KEY_FILE ") {
		t.Errorf("stderr %q, want one line naming REGULARS_DKIM_KEY_FILE", stderr)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
}

// TestServeSignsMailWithDKIM checks that with a DKIM key both of serve's mailers sign: a
// scheduled campaign's mails (the campaign sender) and a test send (the club mailer, which also
// sends the club's mail), with signatures that verify and cover List-Unsubscribe.
func TestServeSignsMailWithDKIM(t *testing.T) {
	t.Parallel()
	keyFile, pub := writeDKIMKey(t)
	dbURL := dbtest.URL(t)
	sink := smtptest.New(t)
	env := campaignEnv(t, dbURL, sink, "REGULARS_DKIM_KEY_FILE="+keyFile, "REGULARS_DKIM_SELECTOR=news2026",
		"REGULARS_SEND_RATE=0")
	srv := startServe(t, env)
	db := openTestDB(t, dbURL)
	execSQL(t, db, `
		INSERT INTO members (card, email, name, status, marketing_consent, source)
		SELECT lpad(g::text, 13, '0'), 'member.' || g || '@example.com', 'Member ' || g, 'active', 'confirmed', 'till'
		FROM generate_series(1, 3) g`)
	marketer := newAPIClient(srv.base, createKey(t, env, "--role", "marketer", "--name", "campaigns"))
	id := scheduleCampaign(t, marketer, 2*time.Second)
	waitSent(t, marketer, id, time.Minute)
	marketer.mustDo(t, http.MethodPost, fmt.Sprintf("/api/v1/campaigns/%d/test", id),
		map[string]any{"addresses": []string{"proof@shop.example"}}, http.StatusAccepted)

	msgs := sink.Messages()
	if len(msgs) != 4 {
		t.Fatalf("%d mails, want 3 campaign mails and 1 test send", len(msgs))
	}
	// The check can fail: a changed subject, or another key, does not verify.
	if _, err := verifyDKIM(bytes.Replace(msgs[0].Data, []byte("Subject: Hello"), []byte("Subject: Hallo"), 1), pub); err == nil {
		t.Errorf("a mail with a changed subject verified")
	}
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := verifyDKIM(msgs[0].Data, otherPub); err == nil {
		t.Errorf("a mail verified with another key")
	}
	for _, m := range msgs {
		tags, err := verifyDKIM(m.Data, pub)
		if err != nil {
			t.Errorf("mail to %v: %v", m.To, err)
			continue
		}
		if tags["d"] != "shop.example" || tags["s"] != "news2026" || tags["a"] != "ed25519-sha256" {
			t.Errorf("mail to %v signed with d=%s s=%s a=%s, want shop.example, news2026, ed25519-sha256",
				m.To, tags["d"], tags["s"], tags["a"])
		}
		signed := map[string]bool{}
		for _, h := range strings.Split(tags["h"], ":") {
			signed[strings.ToLower(h)] = true
		}
		want := []string{"from", "to", "subject", "message-id"}
		if m.Header.Get("List-Unsubscribe") != "" {
			want = append(want, "list-unsubscribe", "list-unsubscribe-post")
		} else if m.To[0] != "proof@shop.example" {
			t.Errorf("campaign mail to %v has no List-Unsubscribe", m.To)
		}
		for _, h := range want {
			if !signed[h] {
				t.Errorf("mail to %v: h=%s does not cover %s", m.To, tags["h"], h)
			}
		}
	}
}

// verifyDKIM checks the message's one DKIM-Signature (relaxed/relaxed, ed25519-sha256) against
// pub and returns its tags.
func verifyDKIM(data []byte, pub ed25519.PublicKey) (map[string]string, error) {
	head, body, ok := bytes.Cut(data, []byte("\r\n\r\n"))
	if !ok {
		return nil, fmt.Errorf("no end of header")
	}
	// Header fields, each with its folded continuation lines.
	var fields []string
	for _, line := range strings.SplitAfter(string(head)+"\r\n", "\r\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1] += line
		} else {
			fields = append(fields, line)
		}
	}
	var sigField string
	for _, f := range fields {
		if strings.HasPrefix(strings.ToLower(f), "dkim-signature:") {
			if sigField != "" {
				return nil, fmt.Errorf("more than one DKIM-Signature")
			}
			sigField = f
		}
	}
	if sigField == "" {
		return nil, fmt.Errorf("no DKIM-Signature")
	}
	tags := map[string]string{}
	for _, tag := range strings.Split(unfold(sigField[len("dkim-signature:"):]), ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(tag), "=")
		if name != "" {
			tags[name] = strings.Join(strings.Fields(value), "")
		}
	}
	if tags["c"] != "relaxed/relaxed" || tags["a"] != "ed25519-sha256" {
		return tags, fmt.Errorf("c=%s a=%s: this check verifies relaxed/relaxed ed25519-sha256 only", tags["c"], tags["a"])
	}

	// The body hash (RFC 6376 3.4.4: relaxed body).
	lines := strings.Split(string(body), "\r\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(wsp.ReplaceAllString(l, " "), " ")
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	canonBody := ""
	if len(lines) > 0 {
		canonBody = strings.Join(lines, "\r\n") + "\r\n"
	}
	bh := sha256.Sum256([]byte(canonBody))
	if got := base64.StdEncoding.EncodeToString(bh[:]); got != tags["bh"] {
		return tags, fmt.Errorf("body hash %s, signature says %s", got, tags["bh"])
	}

	// The signed header fields, each instance taken from the bottom up, then the signature's
	// own field with an empty b= (RFC 6376 3.4.2 and 3.7).
	used := map[int]bool{}
	var signed strings.Builder
	for _, name := range strings.Split(tags["h"], ":") {
		for i := len(fields) - 1; i >= 0; i-- {
			fname, _, _ := strings.Cut(fields[i], ":")
			if !used[i] && strings.EqualFold(strings.TrimSpace(fname), name) {
				used[i] = true
				signed.WriteString(relaxedHeader(fields[i]) + "\r\n")
				break
			}
		}
	}
	signed.WriteString(relaxedHeader(emptyB.ReplaceAllString(sigField, "${1}b=")))
	sig, err := base64.StdEncoding.DecodeString(tags["b"])
	if err != nil {
		return tags, fmt.Errorf("b=: %v", err)
	}
	digest := sha256.Sum256([]byte(signed.String()))
	if !ed25519.Verify(pub, digest[:], sig) {
		return tags, fmt.Errorf("the signature does not verify")
	}
	return tags, nil
}

var (
	wsp    = regexp.MustCompile(`[ \t]+`)
	emptyB = regexp.MustCompile(`(^|;|[ \t\r\n])b=[^;]*`)
)

func unfold(s string) string { return strings.NewReplacer("\r\n", "", "\n", "").Replace(s) }

// relaxedHeader is RFC 6376 3.4.2's relaxed canonical form of one header field, without CRLF.
func relaxedHeader(field string) string {
	name, value, _ := strings.Cut(unfold(field), ":")
	return strings.ToLower(strings.TrimSpace(name)) + ":" + strings.TrimSpace(wsp.ReplaceAllString(value, " "))
}
