package models

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Purposes of the signed links in club mail. A token signed for one purpose is refused for
// another, so a confirmation link cannot be replayed as an unsubscribe and the other way round.
const (
	TokenConfirm     = "confirm"     // /confirm: double opt-in
	TokenPreferences = "preferences" // /preferences: the low-privilege page (see member_links.go)
	TokenUnsubscribe = "unsubscribe" // /unsubscribe and the RFC 8058 one-click POST

	// Links a member asks for and gets by mail; their tokens name a member_links row, not a member.
	TokenLinkExport  = "link-export"  // /preferences/export
	TokenLinkErase   = "link-erase"   // /preferences/erase
	TokenLinkConsent = "link-consent" // /preferences/consent
)

var (
	// ErrTokenInvalid is a token that is malformed, tampered with or signed for another purpose.
	ErrTokenInvalid = errors.New("invalid link")
	// ErrTokenExpired is a genuine token past its expiry.
	ErrTokenExpired = errors.New("expired link")
)

// SignToken returns a URL-safe token naming memberID (for the TokenLink purposes: a member_links
// row) for purpose until expires (zero: never).
// Form: <id>.<expiry unix seconds, base 36>.<HMAC-SHA256 of purpose, id and expiry>.
func SignToken(secret []byte, purpose string, memberID int64, expires time.Time) string {
	var exp int64
	if !expires.IsZero() {
		exp = expires.Unix()
	}
	body := strconv.FormatInt(memberID, 10) + "." + strconv.FormatInt(exp, 36)
	return body + "." + tokenMAC(secret, purpose, body)
}

// VerifyToken returns the member a token names, or ErrTokenInvalid / ErrTokenExpired.
func VerifyToken(secret []byte, purpose, token string, now time.Time) (int64, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return 0, ErrTokenInvalid
	}
	body := parts[0] + "." + parts[1]
	if !hmac.Equal([]byte(parts[2]), []byte(tokenMAC(secret, purpose, body))) {
		return 0, ErrTokenInvalid
	}
	id, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, ErrTokenInvalid
	}
	exp, err := strconv.ParseInt(parts[1], 36, 64)
	if err != nil {
		return 0, ErrTokenInvalid
	}
	if exp != 0 && now.Unix() > exp {
		return id, ErrTokenExpired
	}
	return id, nil
}

func tokenMAC(secret []byte, purpose, body string) string {
	pool := macPool(secret)
	m := pool.Get().(hash.Hash)
	m.Reset() // back to the keyed state, without hashing the key again
	m.Write([]byte("regulars-token-v1\x00" + purpose + "\x00" + body))
	var sum [sha256.Size]byte
	out := base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0])[:18])
	pool.Put(m)
	return out
}

// macPools holds, per secret (a server has one or two), HMAC-SHA256 instances keyed with it: a
// campaign signs two links per recipient, and keying a new HMAC each time was most of the
// signing's cost (docs/benchmarks.md, "Per-mail CPU of building a mail").
var macPools sync.Map // string(secret) → *sync.Pool of hash.Hash

func macPool(secret []byte) *sync.Pool {
	if p, ok := macPools.Load(string(secret)); ok {
		return p.(*sync.Pool)
	}
	key := string(secret)
	p, _ := macPools.LoadOrStore(key, &sync.Pool{New: func() any { return hmac.New(sha256.New, []byte(key)) }})
	return p.(*sync.Pool)
}
