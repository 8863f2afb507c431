package models

import (
	"testing"
	"time"
)

// BenchmarkSignToken signs the two member links a campaign mail carries (preferences and
// unsubscribe), as the sender does for every recipient.
func BenchmarkSignToken(b *testing.B) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	exp := time.Now().Add(90 * 24 * time.Hour)
	b.ReportAllocs()
	for i := range b.N {
		_ = SignToken(secret, TokenPreferences, int64(i), exp)
		_ = SignToken(secret, TokenUnsubscribe, int64(i), time.Time{})
	}
}
