package handlers

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// Reloading the join form, or forging X-Forwarded-For while reloading it, counts one view a
// day: the funnel's conversion rate (submissions ÷ views) is not pushed down by one client.
func TestJoinFormViewsCountEachClientOnce(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	if _, err := db.CreateStore(ctx, models.StoreInput{Code: "oslo-1", Name: "Oslo", Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}
	s := mustNew(t, testConfig(db))
	open := func(client *http.Client, userAgent, xff string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://club.example/join?store=oslo-1", nil)
		req.Header.Set("User-Agent", userAgent)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /join: %d", res.StatusCode)
		}
	}
	views := func() int64 {
		t.Helper()
		_, totals, err := db.JoinFunnel(ctx, time.Now(), time.Now(), "oslo-1")
		if err != nil {
			t.Fatal(err)
		}
		return totals[0].Views
	}

	visitor := peerClient(s, "198.51.100.7")
	for i := range 5 {
		open(visitor, "Firefox", "203.0.113."+string(rune('1'+i)))
	}
	if n := views(); n != 1 {
		t.Errorf("one client's five views: %d, want 1", n)
	}
	open(visitor, "Safari", "")
	open(peerClient(s, "198.51.100.8"), "Firefox", "")
	if n := views(); n != 3 {
		t.Errorf("three clients: %d views, want 3", n)
	}

	t.Run("one IP that changes its user agent adds at most the join rate of views a minute", func(t *testing.T) {
		before, began := views(), time.Now()
		flood := peerClient(s, "198.51.100.9")
		for i := range 3 * DefaultJoinRate {
			open(flood, "Bot/"+strconv.Itoa(i), "")
		}
		// The burst, plus what the limit refills (DefaultJoinRate a minute) however slow the run.
		most := int64(DefaultJoinRate) + int64(time.Since(began).Minutes()*DefaultJoinRate) + 1
		if added := views() - before; added > most {
			t.Errorf("one IP with %d user agents added %d views, want at most %d", 3*DefaultJoinRate, added, most)
		}
	})
}
