package handlers

import (
	"encoding/json"
	"testing"
)

// TestCampaignTrackOpensRoundTrips checks that track_opens is false unless asked for, is stored
// as written on create and update, and is read back by GET.
func TestCampaignTrackOpensRoundTrips(t *testing.T) {
	ca := newCampaignAPI(t)
	trackOpens := func(t *testing.T, c map[string]any) any {
		t.Helper()
		v, ok := c["track_opens"]
		if !ok {
			t.Fatalf("no track_opens in %v", c)
		}
		return v
	}

	res := ca.do(t, "POST", "/api/v1/campaigns", ca.marketer, ca.campaign(ca.segmentID))
	if res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	created := res.JSON(t)
	if got := trackOpens(t, created); got != false {
		t.Errorf("a campaign created without track_opens has %v, want false", got)
	}
	id := created["id"].(json.Number).String()

	body := ca.campaign(ca.segmentID)
	body["track_opens"] = true
	res = ca.do(t, "POST", "/api/v1/campaigns", ca.marketer, body)
	if res.Status != 201 {
		t.Fatalf("create with track_opens: %d %s", res.Status, res.Body)
	}
	if got := trackOpens(t, res.JSON(t)); got != true {
		t.Errorf("created with track_opens true, got %v", got)
	}
	tracked := res.JSON(t)["id"].(json.Number).String()
	res = ca.do(t, "GET", "/api/v1/campaigns/"+tracked, ca.marketer, nil)
	if got := trackOpens(t, res.JSON(t)); res.Status != 200 || got != true {
		t.Errorf("GET after create with track_opens true: %d, track_opens %v", res.Status, got)
	}

	for _, want := range []bool{true, false} {
		res = ca.do(t, "PATCH", "/api/v1/campaigns/"+id, ca.marketer, map[string]any{"track_opens": want})
		if res.Status != 200 {
			t.Fatalf("update track_opens to %v: %d %s", want, res.Status, res.Body)
		}
		if got := trackOpens(t, res.JSON(t)); got != want {
			t.Errorf("update to %v answered %v", want, got)
		}
		res = ca.do(t, "GET", "/api/v1/campaigns/"+id, ca.marketer, nil)
		if got := trackOpens(t, res.JSON(t)); got != want {
			t.Errorf("GET after update to %v: %v", want, got)
		}
		var stored bool
		if err := ca.db.Pool.QueryRow(t.Context(), `SELECT track_opens FROM campaigns WHERE id = $1`, id).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != want {
			t.Errorf("stored track_opens %v after update to %v", stored, want)
		}
	}

	// A name-only change leaves it as it is.
	res = ca.do(t, "PATCH", "/api/v1/campaigns/"+tracked, ca.marketer, map[string]any{"name": "Renamed"})
	if got := trackOpens(t, res.JSON(t)); res.Status != 200 || got != true {
		t.Errorf("rename: %d, track_opens %v, want true kept", res.Status, got)
	}
}
