package models

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tok := SignToken(secret, TokenConfirm, 42, now.Add(time.Hour))
	if id, err := VerifyToken(secret, TokenConfirm, tok, now); err != nil || id != 42 {
		t.Fatalf("genuine token: id %d, err %v", id, err)
	}
	if _, err := VerifyToken(secret, TokenConfirm, tok, now.Add(2*time.Hour)); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("after expiry: err %v, want ErrTokenExpired", err)
	}
	if _, err := VerifyToken(secret, TokenUnsubscribe, tok, now); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("other purpose: err %v, want ErrTokenInvalid", err)
	}
	if _, err := VerifyToken([]byte("another secret"), TokenConfirm, tok, now); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("other secret: err %v, want ErrTokenInvalid", err)
	}
	// Pointing a token at another member, or stretching its expiry, breaks the signature.
	parts := strings.Split(tok, ".")
	for name, bad := range map[string]string{
		"other member":  "43." + parts[1] + "." + parts[2],
		"later expiry":  parts[0] + ".zzzzzz." + parts[2],
		"no expiry":     parts[0] + ".0." + parts[2],
		"cut signature": parts[0] + "." + parts[1] + "." + parts[2][:10],
		"empty":         "",
		"garbage":       "not-a-token",
	} {
		if _, err := VerifyToken(secret, TokenConfirm, bad, now); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("%s: err %v, want ErrTokenInvalid", name, err)
		}
	}
	forever := SignToken(secret, TokenUnsubscribe, 7, time.Time{})
	if id, err := VerifyToken(secret, TokenUnsubscribe, forever, now.AddDate(30, 0, 0)); err != nil || id != 7 {
		t.Errorf("token without expiry 30 years on: id %d, err %v", id, err)
	}
}

// TestTokenMACIsTheKeyedHMACOfItsSecret: the pooled, pre-keyed HMACs give exactly the MAC of a
// fresh HMAC-SHA256 keyed with the token's own secret, with two secrets used in turn (a pool
// per secret: one secret's instance must never sign for the other).
func TestTokenMACIsTheKeyedHMACOfItsSecret(t *testing.T) {
	secrets := [][]byte{[]byte("first secret, 32 bytes long ...."), []byte("second")}
	for i := range 20 {
		secret := secrets[i%2]
		body := strconv.Itoa(i) + ".0"
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("regulars-token-v1\x00" + TokenUnsubscribe + "\x00" + body))
		want := base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
		if got := tokenMAC(secret, TokenUnsubscribe, body); got != want {
			t.Fatalf("secret %d, body %s: MAC %s, want %s", i%2, body, got, want)
		}
	}
}
