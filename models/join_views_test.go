package models_test

import (
	"context"
	"sync"
	"testing"
	"time"
)

// One client's repeated views of the join form count once a day per store, so that they do not
// lower the conversion rate; no address is stored, and a day's clients are forgotten after it.
func TestJoinViewsCountEachClientOnceADay(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	views := func(store string) int64 {
		t.Helper()
		day := now
		_, totals, err := db.JoinFunnel(ctx, day, day, store)
		if err != nil {
			t.Fatal(err)
		}
		return totals[0].Views
	}
	view := func(store, ip, ua string) {
		t.Helper()
		if err := db.CountJoinView(ctx, store, ip, ua); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("reloads by one client count once", func(t *testing.T) {
		for range 5 {
			view("oslo-1", "192.0.2.1", "Firefox")
		}
		if n := views("oslo-1"); n != 1 {
			t.Errorf("%d views, want 1", n)
		}
	})
	t.Run("another browser or address is another client", func(t *testing.T) {
		view("oslo-1", "192.0.2.1", "Safari")
		view("oslo-1", "192.0.2.2", "Firefox")
		if n := views("oslo-1"); n != 3 {
			t.Errorf("%d views, want 3", n)
		}
	})
	t.Run("the same client on the form of another store counts there", func(t *testing.T) {
		view("", "192.0.2.1", "Firefox")
		if n := views(""); n != 4 {
			t.Errorf("%d views over all stores, want 4", n)
		}
	})
	t.Run("many views at once by one client count once", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if err := db.CountJoinView(ctx, "oslo-1", "198.51.100.9", "Chrome"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := views("oslo-1"); n != 4 {
			t.Errorf("%d views, want 4", n)
		}
	})
	t.Run("no address is stored", func(t *testing.T) {
		var n, withIP int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE length(client) <> 32
			OR position('192.0.2.' in encode(client, 'escape')) > 0) FROM join_views`).Scan(&n, &withIP); err != nil {
			t.Fatal(err)
		}
		if n != 5 || withIP != 0 {
			t.Errorf("%d client rows (want 5), %d not a bare 32-byte hash", n, withIP)
		}
	})
	t.Run("the next day the client counts again, and older days are forgotten", func(t *testing.T) {
		now = now.Add(24 * time.Hour)
		view("oslo-1", "192.0.2.1", "Firefox")
		if n := views("oslo-1"); n != 1 {
			t.Errorf("%d views the next day, want 1", n)
		}
		now = now.Add(48 * time.Hour)
		view("oslo-1", "192.0.2.1", "Firefox")
		var salts, clients int
		if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM join_view_salts), (SELECT count(*) FROM join_views)`).
			Scan(&salts, &clients); err != nil {
			t.Fatal(err)
		}
		if salts != 1 || clients != 1 {
			t.Errorf("%d salts and %d clients kept, want only today's 1 and 1", salts, clients)
		}
		_, totals, err := db.JoinFunnel(ctx, now.AddDate(0, 0, -3), now, "")
		if err != nil {
			t.Fatal(err)
		}
		if totals[0].Views != 7 {
			t.Errorf("%d views over the days, want 7: forgetting clients keeps the counts", totals[0].Views)
		}
	})
}
