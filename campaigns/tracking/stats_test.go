package tracking

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"
)

// TestCampaignStats works a small campaign through by hand. Run 1 (started t0, mails sent an
// hour later, attribution window 7 days, cost 1000 a mail):
//
//	ada  sent     sale 10000 and refund 3000 inside, sale 50000 a day after the window,
//	              sale 2000 before the mail, EUR 500 inside (another currency): net 7000 NOK
//	bo   sent     sale 5000 exactly at the end of the window (inclusive): 5000
//	cy   sent     bounced, nothing bought, withdrew consent a day after the mail: 0
//	di   failed   buys 80000 but was not mailed: not counted
//	ha   held out sale 4000: 4000
//	hb   held out sale 2000 inside, 9999 a second after the window: 2000
//	hc   held out refund 3000 inside: -3000
//
// Mailed [7000 5000 0]: mean 4000, sample variance 13e6. Held out [4000 2000 -3000]: mean
// 1000, variance 13e6. Lift 3000, relative 3. Equal n and variances make Welch's degrees of
// freedom 2(n-1) = 4, so the 95 % interval is 3000 ± t(0.975, 4) · sqrt(13e6/3 + 13e6/3) with
// t(0.975, 4) = 2.7764451 (tables). ROI = (12000 - 3·1000) / 3000 = 3.
//
// Run 2 (started t0 + 20 days, no holdout): bo sent, sale 1500 a day later; ROI 0.5.
func TestCampaignStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	day := 24 * time.Hour
	sent := t0.Add(time.Hour)
	r1 := f.run(t, f.campaignID, t0)
	for name, status := range map[string]string{"ada": "sent", "bo": "sent", "cy": "sent", "di": "failed",
		"ha": "held_out", "hb": "held_out", "hc": "held_out"} {
		f.recipient(t, r1, name, status, sent)
	}
	f.exec(t, `UPDATE campaign_recipients SET bounced_at = $2 WHERE run_id = $1 AND email = 'cy@example.com'`, r1, sent.Add(time.Minute))
	f.buy(t, "ada", "sale", 10000, f.oslo, sent.Add(day))
	f.buy(t, "ada", "refund", 3000, f.oslo, sent.Add(2*day))
	f.buy(t, "ada", "sale", 50000, f.oslo, sent.Add(8*day))
	f.buy(t, "ada", "sale", 2000, f.oslo, sent.Add(-time.Hour))
	f.buy(t, "ada", "sale", 500, f.eur, sent.Add(day))
	f.buy(t, "bo", "sale", 5000, f.oslo, sent.Add(7*day))
	f.buy(t, "di", "sale", 80000, f.oslo, sent.Add(day))
	f.buy(t, "ha", "sale", 4000, f.oslo, t0.Add(day))
	f.buy(t, "hb", "sale", 2000, f.oslo, t0.Add(6*day))
	f.buy(t, "hb", "sale", 9999, f.oslo, t0.Add(7*day+time.Second))
	f.buy(t, "hc", "refund", 3000, f.oslo, t0.Add(2*day))
	withdraw := func(name string, at time.Time) {
		f.exec(t, `INSERT INTO consents (member_id, purpose, granted, source, recorded_at)
			VALUES ($1, 'marketing_email', false, 'unsubscribe', $2)`, f.member(t, name), at)
	}
	withdraw("cy", sent.Add(day))        // counted
	withdraw("bo", sent.Add(-time.Hour)) // before the mail
	withdraw("ada", sent.Add(10*day))    // after the window

	r2 := f.run(t, f.campaignID, t0.Add(20*day))
	sent2 := t0.Add(20*day + time.Hour)
	f.recipient(t, r2, "bo", "sent", sent2)
	f.buy(t, "bo", "sale", 1500, f.oslo, sent2.Add(day))

	ids, err := LinkIDs(ctx, f.db, f.campaignID, []string{"https://shop.example.com/a", "https://shop.example.com/b"})
	if err != nil {
		t.Fatal(err)
	}
	click := func(run int64, name, url string) {
		if _, err := RecordClick(ctx, f.db, Ref{RunID: run, MemberID: f.member(t, name), LinkID: ids[url]}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := "https://shop.example.com/a", "https://shop.example.com/b"
	click(r1, "ada", a)
	click(r1, "ada", a)
	click(r1, "bo", a)
	click(r1, "bo", b)
	click(r2, "bo", a)

	st, err := FindCampaignStats(ctx, f.db, f.campaignID, StatsOptions{CostPerMail: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if st.AttributionDays != 7 || len(st.Runs) != 2 || st.Runs[0].RunID != r1 || st.Runs[1].RunID != r2 {
		t.Fatalf("stats %+v", st)
	}
	type counts struct{ recipients, heldOut, sent, failed, bounced, delivered, unsubscribed, clicks, unique int64 }
	type linkWant struct {
		clicks, unique int64
		ctr            float64
	}
	ci := 2.7764451051977934 * math.Sqrt(26e6/3)
	cases := []struct {
		name  string
		f     Figures
		c     counts
		ctr   float64
		links []linkWant
		attr  int64
		perR  float64
		cost  int64
		roi   float64
		other bool
	}{
		{"run 1", st.Runs[0].Figures, counts{4, 3, 3, 1, 1, 2, 1, 4, 2}, 1, []linkWant{{3, 2, 1}, {1, 1, 0.5}}, 12000, 4000, 3000, 3, true},
		{"run 2", st.Runs[1].Figures, counts{1, 0, 1, 0, 0, 1, 0, 1, 1}, 1, []linkWant{{1, 1, 1}, {0, 0, 0}}, 1500, 1500, 1000, 0.5, false},
		{"the total", st.Total, counts{5, 3, 4, 1, 1, 3, 1, 5, 3}, 1, []linkWant{{4, 3, 1}, {1, 1, 1.0 / 3}}, 13500, 3375, 4000, 2.375, true},
	}
	for _, tc := range cases {
		t.Run(tc.name+" matches the hand calculation", func(t *testing.T) {
			g := tc.f
			got := counts{g.Recipients, g.HeldOut, g.Sent, g.Failed, g.Bounced, g.Delivered, g.Unsubscribed, g.Clicks, g.UniqueClickers}
			if got != tc.c {
				t.Errorf("counts %+v, want %+v", got, tc.c)
			}
			wantFloat(t, "click-through rate", g.ClickThroughRate, tc.ctr)
			if g.Opens != nil || g.UniqueOpeners != nil {
				t.Error("opens are counted although the campaign does not track them")
			}
			if len(g.Links) != 2 || g.Links[0].URL != a || g.Links[1].URL != b {
				t.Fatalf("links %+v", g.Links)
			}
			for i, w := range tc.links {
				l := g.Links[i]
				if l.Clicks != w.clicks || l.UniqueClickers != w.unique {
					t.Errorf("link %s: %d clicks, %d unique; want %d, %d", l.URL, l.Clicks, l.UniqueClickers, w.clicks, w.unique)
				}
				wantFloat(t, "CTR of "+l.URL, l.ClickThroughRate, w.ctr)
			}
			r := g.Revenue
			if r.Currency == nil || *r.Currency != "NOK" || r.OtherCurrencies != tc.other {
				t.Errorf("currency %v, other currencies %v; want NOK, %v", r.Currency, r.OtherCurrencies, tc.other)
			}
			if r.Attributed != tc.attr || r.Cost == nil || *r.Cost != tc.cost {
				t.Errorf("attributed %d, cost %v; want %d, %d", r.Attributed, r.Cost, tc.attr, tc.cost)
			}
			wantFloat(t, "revenue per recipient", r.PerRecipient, tc.perR)
			wantFloat(t, "ROI", r.ROI, tc.roi)
		})
	}
	t.Run("run 1's holdout gives the lift and its Welch interval", func(t *testing.T) {
		h := st.Runs[0].Revenue.Holdout
		if h == nil {
			t.Fatal("no holdout")
		}
		if h.Members != 3 || h.Revenue != 3000 {
			t.Errorf("holdout %d members, revenue %d; want 3, 3000", h.Members, h.Revenue)
		}
		wantFloat(t, "per held-out member", &h.PerMember, 1000)
		wantFloat(t, "lift", &h.Lift, 3000)
		wantFloat(t, "relative lift", h.RelativeLift, 3)
		wantFloat(t, "incremental revenue", &h.Incremental, 9000)
		wantFloat(t, "lift low", h.LiftLow, 3000-ci)
		wantFloat(t, "lift high", h.LiftHigh, 3000+ci)
	})
	t.Run("long after the runs the figures are final, but three held out are too few for a verdict", func(t *testing.T) {
		if st.Preliminary || st.FinalAt != nil {
			t.Errorf("preliminary %v, final_at %v; want final", st.Preliminary, st.FinalAt)
		}
		if v := st.Runs[0].Revenue.Holdout.Verdict; v != nil {
			t.Errorf("verdict %q from three held-out members", *v)
		}
	})
	t.Run("a run without a holdout has none", func(t *testing.T) {
		if st.Runs[1].Revenue.Holdout != nil {
			t.Errorf("holdout %+v", st.Runs[1].Revenue.Holdout)
		}
	})
	t.Run("the total pools the runs' recipients against the held-out members", func(t *testing.T) {
		h := st.Total.Revenue.Holdout
		if h == nil {
			t.Fatal("no holdout")
		}
		wantFloat(t, "lift", &h.Lift, 3375-1000)
	})
	t.Run("a longer window takes in the late purchases", func(t *testing.T) {
		st, err := FindCampaignStats(ctx, f.db, f.campaignID, StatsOptions{AttributionDays: 11})
		if err != nil {
			t.Fatal(err)
		}
		r := st.Runs[0].Revenue
		if r.Attributed != 62000 || r.Cost != nil || r.ROI != nil {
			t.Errorf("attributed %d, cost %v, roi %v; want 62000 and no cost or ROI", r.Attributed, r.Cost, r.ROI)
		}
		if r.Holdout == nil || r.Holdout.Revenue != 3000+9999 {
			t.Errorf("holdout %+v, want revenue 12999", r.Holdout)
		}
		if st.Runs[0].Unsubscribed != 2 {
			t.Errorf("unsubscribed %d, want 2 (ada's withdrawal on day 10 is inside 11 days)", st.Runs[0].Unsubscribed)
		}
	})
	t.Run("redemptions in the window count, cancelled and late ones not", func(t *testing.T) {
		f.exec(t, `INSERT INTO rewards (code, name, cost_points, discount_minor) VALUES ('coffee', 'Coffee', 10, 3500)`)
		redeem := func(id, name string, at time.Time, cancelled bool) {
			f.exec(t, `INSERT INTO redemptions (store_id, txn_id, member_id, reward_code, points_spent, content_hash, created_at, cancelled_at)
				VALUES ($1, $2, $3, 'coffee', 10, '\x00', $4::timestamptz, CASE WHEN $5::boolean THEN $4::timestamptz END)`, f.oslo, id, f.member(t, name), at, cancelled)
		}
		redeem("RD-1", "ada", sent.Add(day), false)
		redeem("RD-2", "ada", sent.Add(2*day), true) // cancelled
		redeem("RD-3", "bo", sent.Add(9*day), false) // after the 7-day window
		redeem("RD-4", "ha", t0.Add(3*day), false)   // held out
		redeem("RD-5", "ada", sent.Add(-day), false) // before the mail
		st, err := FindCampaignStats(ctx, f.db, f.campaignID, StatsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r := st.Runs[0]; r.Redemptions != 1 || r.HeldOutRedemptions != 1 {
			t.Errorf("run 1: %d redemptions, %d held out; want 1 and 1", r.Redemptions, r.HeldOutRedemptions)
		}
		if st.Total.Redemptions != 1 {
			t.Errorf("total: %d redemptions, want 1", st.Total.Redemptions)
		}
	})
	t.Run("an unknown campaign is not found", func(t *testing.T) {
		if _, err := FindCampaignStats(ctx, f.db, 9999, StatsOptions{}); err == nil {
			t.Error("no error")
		}
	})
}

func TestCampaignStatsWithoutRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	st, err := FindCampaignStats(context.Background(), f.db, f.campaignID, StatsOptions{CostPerMail: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Runs) != 0 || st.Total.Sent != 0 || st.Total.ClickThroughRate != nil || st.Total.Revenue.ROI != nil ||
		st.Total.Revenue.Currency != nil || st.Total.Revenue.Holdout != nil || len(st.Total.Links) != 0 {
		t.Errorf("stats of a campaign never sent: %+v", st)
	}
}

func TestWelchInterval(t *testing.T) {
	t.Parallel()
	// Unequal groups, checked against the formula step by step: a = [1 2 3 4] (mean 2.5,
	// s² 5/3), b = [10 20] (mean 15, s² 50). se² = 5/12 + 25, df = se⁴ / ((5/12)²/3 + 25²/1).
	a := group{n: 4, sum: 10, sumSquares: 30}
	b := group{n: 2, sum: 30, sumSquares: 500}
	lo, hi, ok := welchInterval(a, b, 0.95)
	if !ok {
		t.Fatal("no interval")
	}
	se2 := 5.0/12 + 25
	df := se2 * se2 / ((5.0/12)*(5.0/12)/3 + 25*25)
	if math.Abs(df-1.03352) > 1e-4 {
		t.Fatalf("df %v", df)
	}
	// df ≈ 1.033: the t quantile is close to t(0.975, 1) = 12.706 and a little below it.
	q := (hi - lo) / 2 / math.Sqrt(se2)
	if !(q > 11 && q < 12.706) || math.Abs((lo+hi)/2-(-12.5)) > 1e-9 {
		t.Errorf("interval [%v, %v]: centre %v, t %v", lo, hi, (lo+hi)/2, q)
	}
	if _, _, ok := welchInterval(group{n: 1, sum: 5, sumSquares: 25}, b, 0.95); ok {
		t.Error("an interval from a single member")
	}
}

func wantFloat(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s is null, want %v", what, want)
		return
	}
	if math.Abs(*got-want) > 1e-6*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, *got, want)
	}
}

// TestCampaignStatsPreliminary reads one run of 30 mailed and 30 held-out members (the minimum
// for a verdict) at a fixed clock: just after the send, the last moment before the window
// closes, and after it. The last mail goes out 29 minutes after the start, so the figures are
// final 7 days after that; mailed members buy 1010 + 10·i, held-out ones 10 + 10·i.
func TestCampaignStatsPreliminary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	run := f.run(t, f.campaignID, t0)
	var last time.Time
	for i := range MinGroupMembers {
		last = t0.Add(time.Duration(i) * time.Minute)
		sent, held := fmt.Sprintf("s%02d", i), fmt.Sprintf("h%02d", i)
		f.recipient(t, run, sent, "sent", last)
		f.recipient(t, run, held, "held_out", t0)
		f.buy(t, sent, "sale", 1010+10*int64(i), f.oslo, last.Add(time.Hour))
		f.buy(t, held, "sale", 10+10*int64(i), f.oslo, t0.Add(time.Hour))
	}
	final := last.AddDate(0, 0, DefaultAttributionDays)
	read := func(t *testing.T, now time.Time) *Stats {
		t.Helper()
		st, err := FindCampaignStats(ctx, f.db, f.campaignID, StatsOptions{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Runs) != 1 || st.Total.Revenue.Holdout == nil || st.Runs[0].Revenue.Holdout == nil {
			t.Fatalf("stats %+v", st)
		}
		return st
	}
	for _, tc := range []struct {
		name string
		now  time.Time
	}{{"four minutes after the send", last.Add(4 * time.Minute)}, {"a second before the window closes", final.Add(-time.Second)}} {
		t.Run(tc.name+" the figures are preliminary, final at the last mail plus the window, with no verdict", func(t *testing.T) {
			st := read(t, tc.now)
			if !st.Preliminary || st.FinalAt == nil || !st.FinalAt.Equal(final) {
				t.Errorf("preliminary %v, final_at %v; want true, %v", st.Preliminary, st.FinalAt, final)
			}
			if r := st.Runs[0]; !r.Preliminary || r.FinalAt == nil || !r.FinalAt.Equal(final) {
				t.Errorf("run: preliminary %v, final_at %v; want true, %v", r.Preliminary, r.FinalAt, final)
			}
			if v := st.Total.Revenue.Holdout.Verdict; v != nil {
				t.Errorf("verdict %q on preliminary figures", *v)
			}
			if h := st.Total.Revenue.Holdout; h.Lift != 1000 || h.LiftLow == nil {
				t.Errorf("holdout %+v: the figures themselves should be given as they stand", h)
			}
		})
	}
	t.Run("when the window has closed the figures are final with a verdict", func(t *testing.T) {
		st := read(t, final)
		if st.Preliminary || st.FinalAt != nil || st.Runs[0].Preliminary || st.Runs[0].FinalAt != nil {
			t.Errorf("preliminary %v, final_at %v, run %+v; want final", st.Preliminary, st.FinalAt, st.Runs[0])
		}
		for _, h := range []*Holdout{st.Total.Revenue.Holdout, st.Runs[0].Revenue.Holdout} {
			if h.Verdict == nil || *h.Verdict != VerdictAboveZero {
				t.Errorf("verdict %v, want %s (every mailed member bought 1000 more)", h.Verdict, VerdictAboveZero)
			}
		}
	})
	t.Run("a mail still queued leaves the date open", func(t *testing.T) {
		f.recipient(t, run, "late", "queued", time.Time{})
		st := read(t, final.AddDate(0, 1, 0))
		if !st.Preliminary || st.FinalAt != nil || st.Total.Revenue.Holdout.Verdict != nil {
			t.Errorf("preliminary %v, final_at %v, verdict %v; want preliminary without a date or verdict",
				st.Preliminary, st.FinalAt, st.Total.Revenue.Holdout.Verdict)
		}
	})
}

func TestHoldoutJudge(t *testing.T) {
	t.Parallel()
	lo, hi := ptr[float64], ptr[float64]
	cases := []struct {
		name          string
		final         bool
		treated, held int64
		low, high     *float64
		want          string
	}{
		{"final with enough members and the interval above zero is above zero", true, 30, 30, lo(1), hi(5), VerdictAboveZero},
		{"an interval below zero is below zero", true, 30, 30, lo(-5), hi(-1), VerdictBelowZero},
		{"an interval across zero includes zero", true, 300, 30, lo(-1), hi(5), VerdictIncludesZero},
		{"preliminary figures have none", false, 300, 300, lo(1), hi(5), ""},
		{"29 held out are too few", true, 300, 29, lo(1), hi(5), ""},
		{"29 mailed are too few", true, 29, 300, lo(1), hi(5), ""},
		{"without an interval there is none", true, 300, 300, nil, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &Holdout{Members: tc.held, LiftLow: tc.low, LiftHigh: tc.high}
			h.Judge(tc.final, tc.treated)
			got := ""
			if h.Verdict != nil {
				got = *h.Verdict
			}
			if got != tc.want {
				t.Errorf("verdict %q, want %q", got, tc.want)
			}
		})
	}
	var none *Holdout
	none.Judge(true, 100) // no holdout: nothing to judge, and no panic
}
