package tracking

import (
	"context"
	"testing"
	"time"
)

// A link scanner, or one reader clicking and reopening the same mail, repeats clicks and opens
// from one client. The raw totals count every one, but the rates count each recipient once: one
// of two delivered mails clicked (however often) is a click-through rate of 1/2.
func TestRepeatedClicksAndOpensCountOnceInRates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	c := f.campaign(t, true)
	run := f.run(t, c, t0)
	f.recipient(t, run, "ada", "sent", t0.Add(time.Minute))
	f.recipient(t, run, "bo", "sent", t0.Add(time.Minute))
	link := f.id(t, `INSERT INTO campaign_links (campaign_id, url) VALUES ($1, 'https://shop.example.com/a') RETURNING id`, c)
	ref := Ref{RunID: run, MemberID: f.member(t, "ada"), LinkID: link}
	for range 20 {
		if _, err := RecordClick(ctx, f.db, ref); err != nil {
			t.Fatal(err)
		}
		if _, err := RecordOpen(ctx, f.db, ref); err != nil {
			t.Fatal(err)
		}
	}
	st, err := FindCampaignStats(ctx, f.db, c, StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]Figures{"run": st.Runs[0].Figures, "total": st.Total} {
		if g.Clicks != 20 || g.UniqueClickers != 1 || g.Opens == nil || *g.Opens != 20 || *g.UniqueOpeners != 1 {
			t.Errorf("%s: %d clicks by %d, %v opens by %v; want 20 by 1 each", name, g.Clicks, g.UniqueClickers, g.Opens, g.UniqueOpeners)
		}
		wantFloat(t, name+" click-through rate", g.ClickThroughRate, 0.5)
		if len(g.Links) != 1 || g.Links[0].UniqueClickers != 1 {
			t.Fatalf("%s links %+v", name, g.Links)
		}
		wantFloat(t, name+" link click-through rate", g.Links[0].ClickThroughRate, 0.5)
	}
}
