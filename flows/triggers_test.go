package flows

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/jobs/metrics"
)

// entered returns the members of flow id's entries with their event keys.
func (e *env) entered(t *testing.T, id int64) map[int64]string {
	t.Helper()
	rows, err := e.db.Pool.Query(context.Background(), `SELECT member_id, event_key FROM flow_entries WHERE flow_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]string{}
	for rows.Next() {
		var m int64
		var k string
		if err := rows.Scan(&m, &k); err != nil {
			t.Fatal(err)
		}
		out[m] = k
	}
	return out
}

func (e *env) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := e.db.Pool.Exec(context.Background(), query, args...); err != nil {
		t.Fatal(err)
	}
}

const oneMail = `"steps": [{"mail": {"subject": "Hello", "text": "Hello."}}]`

func TestPurchaseCountFiresOnTheNthSale(t *testing.T) {
	e := newEnv(t)
	third, card := e.member(t, "confirmed")
	second, card2 := e.member(t, "confirmed")
	now := time.Now()
	e.sale(t, card, now.Add(-72*time.Hour))
	e.sale(t, card, now.Add(-48*time.Hour))
	e.sale(t, card2, now.Add(-48*time.Hour))
	f := e.flow(t, `{"name": "Third visit", "trigger": {"event": "purchase_count", "count": 3}, `+oneMail+`}`)
	e.sale(t, card, now.Add(-time.Hour))
	e.sale(t, card2, now.Add(-time.Hour))
	en := e.engine()
	e.tick(t, en)
	got := e.entered(t, f.ID)
	if len(got) != 1 || got[third] != "purchase:3" {
		t.Errorf("entered %v, want only member %d (third sale); %d has had two", got, third, second)
	}
	e.sale(t, card, now)
	e.tick(t, en)
	if len(e.entered(t, f.ID)) != 1 {
		t.Error("the fourth sale started the flow again")
	}
}

func TestBirthdayFiresOnceAYearDaysBefore(t *testing.T) {
	e := newEnv(t)
	oslo, _ := time.LoadLocation("UTC")
	in3 := time.Now().In(oslo).AddDate(0, 0, 3)
	yearless, _ := e.member(t, "confirmed")
	full, _ := e.member(t, "confirmed")
	other, _ := e.member(t, "confirmed")
	e.exec(t, `UPDATE members SET birth_date = make_date(4, $2, $3) WHERE id = $1`, yearless, int(in3.Month()), in3.Day())
	e.exec(t, `UPDATE members SET birth_date = make_date(1990, $2, $3) WHERE id = $1`, full, int(in3.Month()), in3.Day())
	e.exec(t, `UPDATE members SET birth_date = make_date(1990, $2, $3) WHERE id = $1`, other, int(in3.AddDate(0, 0, 1).Month()), in3.AddDate(0, 0, 1).Day())
	f := e.flow(t, `{"name": "Birthday", "trigger": {"event": "birthday", "days_before": 3}, "reentry_days": 300, `+oneMail+`}`)
	en := e.engine()
	e.tick(t, en)
	got := e.entered(t, f.ID)
	key := fmt.Sprintf("birthday:%d", in3.Year())
	if len(got) != 2 || got[yearless] != key || got[full] != key {
		t.Errorf("entered %v, want members %d and %d with %s", got, yearless, full, key)
	}
	// Checked again (as every 10 minutes): nobody enters twice.
	e.exec(t, `UPDATE flows SET states_checked_at = NULL WHERE id = $1`, f.ID)
	e.tick(t, en)
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1`, f.ID); n != 2 {
		t.Errorf("%d entries after a second check, want 2", n)
	}
}

func TestLapsedFixedAndPersonal(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	// Every 10 days, last 40 days ago: lapsed for 30 fixed days; personal factor 3 needs > 30
	// days and > 3 × 10 days: lapsed too.
	regular, card := e.member(t, "confirmed")
	for i := range 5 {
		e.sale(t, card, now.Add(-time.Duration(40+10*i)*24*time.Hour))
	}
	// Every 20 days, last 40 days ago: lapsed for 30 fixed days; personal needs > 60 days: not.
	slow, card2 := e.member(t, "confirmed")
	for i := range 4 {
		e.sale(t, card2, now.Add(-time.Duration(40+20*i)*24*time.Hour))
	}
	// One purchase 35 days ago: no gap, days alone decides.
	once, card3 := e.member(t, "confirmed")
	e.sale(t, card3, now.Add(-35*24*time.Hour))
	// Bought last week: not lapsed. Never bought: never lapses.
	_, card4 := e.member(t, "confirmed")
	e.sale(t, card4, now.Add(-7*24*time.Hour))
	e.member(t, "confirmed")

	fixed := e.flow(t, `{"name": "Lapsed 30", "trigger": {"event": "lapsed", "days": 30}, `+oneMail+`}`)
	personal := e.flow(t, `{"name": "Lapsed for them", "trigger": {"event": "lapsed", "days": 30, "personal": true, "factor": 3}, `+oneMail+`}`)
	e.tick(t, e.engine())
	if got := e.entered(t, fixed.ID); len(got) != 3 || got[regular] == "" || got[slow] == "" || got[once] == "" {
		t.Errorf("fixed lapse entered %v, want %d, %d, %d", got, regular, slow, once)
	}
	if got := e.entered(t, personal.ID); len(got) != 2 || got[regular] == "" || got[once] == "" {
		t.Errorf("personal lapse entered %v, want %d and %d (not %d, whose usual gap is 20 days)", got, regular, once, slow)
	}
}

func TestTierChangedFiresWhenASaleMovesTheTier(t *testing.T) {
	e := newEnv(t)
	e.exec(t, `INSERT INTO tiers (name, min_spend_minor, discount_percent) VALUES ('Silver', 0, 0), ('Gold', 8000, 5)`)
	climber, card := e.member(t, "confirmed")
	_, card2 := e.member(t, "confirmed")
	f := e.flow(t, `{"name": "Welcome to gold", "trigger": {"event": "tier_changed"}, `+oneMail+`}`)
	e.sale(t, card, time.Now().Add(-time.Hour)) // 45.00: silver → silver
	e.sale(t, card2, time.Now().Add(-time.Hour))
	e.tick(t, e.engine())
	if got := e.entered(t, f.ID); len(got) != 0 {
		t.Fatalf("entered %v after sales that kept the tier", got)
	}
	e.sale(t, card, time.Now()) // 90.00 in the year: gold
	e.tick(t, e.engine())
	if got := e.entered(t, f.ID); len(got) != 1 || got[climber] == "" {
		t.Errorf("entered %v, want member %d who reached gold", got, climber)
	}
}

func TestSegmentReentryAndPause(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var seg int64
	if err := e.db.Pool.QueryRow(ctx, `INSERT INTO segments (name, rules)
		VALUES ('Oslo', '{"field": "home_store", "op": "eq", "value": "oslo-1"}') RETURNING id`).Scan(&seg); err != nil {
		t.Fatal(err)
	}
	inSeg, card := e.member(t, "confirmed")
	out, card2 := e.member(t, "confirmed")
	e.exec(t, `UPDATE members SET home_store_id = NULL WHERE id = $1`, out)
	f := e.flow(t, fmt.Sprintf(`{"name": "Visits", "trigger": {"event": "purchase_count", "count": 1}, "segment_id": %d,
		"reentry_days": 30, "steps": [{"wait": "1h"}, {"mail": {"subject": "Thanks", "text": "Thanks."}}]}`, seg))
	e.sale(t, card, time.Now())
	e.sale(t, card2, time.Now())
	en := e.engine()
	e.tick(t, en)
	if got := e.entered(t, f.ID); len(got) != 1 || got[inSeg] == "" {
		t.Fatalf("entered %v, want only member %d of the segment", got, inSeg)
	}
	// Paused: the wait ends but nobody moves; activated again, the member goes on from there.
	if _, err := Pause(ctx, e.db, f.ID); err != nil {
		t.Fatal(err)
	}
	e.exec(t, `UPDATE flow_entries SET next_at = now() WHERE flow_id = $1`, f.ID)
	e.tick(t, en)
	if n := e.count(t, `SELECT step FROM flow_entries WHERE flow_id = $1`, f.ID); n != 1 {
		t.Errorf("a paused flow moved its member to step %d", n)
	}
	if _, err := Activate(ctx, e.db, f.ID); err != nil {
		t.Fatal(err)
	}
	e.tick(t, en)
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND status = 'done'`, f.ID); n != 1 {
		t.Error("the member did not go on after the flow was activated again")
	}
	// Within reentry_days nobody enters again; after, they may.
	e.exec(t, `UPDATE flow_entries SET entered_at = now() - interval '10 days' WHERE flow_id = $1`, f.ID)
	e.exec(t, `UPDATE flows SET events_checked_until = now() - interval '1 hour', activated_at = now() - interval '1 hour' WHERE id = $1`, f.ID)
	e.exec(t, `UPDATE transactions SET received_at = now() WHERE member_id = $1`, inSeg)
	e.exec(t, `UPDATE flow_entries SET event_key = 'earlier' WHERE flow_id = $1`, f.ID)
	e.tick(t, en)
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1`, f.ID); n != 1 {
		t.Errorf("%d entries within reentry_days, want 1", n)
	}
	e.exec(t, `UPDATE flow_entries SET entered_at = now() - interval '31 days' WHERE flow_id = $1`, f.ID)
	e.tick(t, en)
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1`, f.ID); n != 2 {
		t.Errorf("%d entries after reentry_days, want 2", n)
	}
}

func TestErasedMembersLeave(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, card := e.member(t, "confirmed")
	f := e.flow(t, `{"name": "Thanks", "trigger": {"event": "first_purchase"},
		"steps": [{"wait": "24h"}, {"mail": {"subject": "Thanks", "text": "Thanks."}}]}`)
	e.sale(t, card, time.Now())
	e.tick(t, e.engine())
	if err := e.db.EraseMember(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Not at once: the member waits a day, and waiting members are looked at every 10 minutes.
	e.tick(t, e.engine())
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND status = 'active'`, f.ID); n != 1 {
		t.Fatal("the waiting entry was checked before its time")
	}
	e.exec(t, `UPDATE flows SET exits_checked_at = now() - interval '11 minutes' WHERE id = $1`, f.ID)
	e.tick(t, e.engine())
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND exit_reason = 'erased'`, f.ID); n != 1 {
		t.Error("the erased member did not leave the flow")
	}
}

// TestImportedHistoryEndsNoFlow: history imported after members entered (sales from before
// their entry) does not count as a purchase during the flow; an imported sale made after the
// entry does.
func TestImportedHistoryEndsNoFlow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, card := e.member(t, "confirmed")
	_, card2 := e.member(t, "confirmed")
	e.sale(t, card, time.Now().Add(-90*24*time.Hour))
	e.sale(t, card2, time.Now().Add(-90*24*time.Hour))
	f := e.flow(t, `{"name": "Win back", "trigger": {"event": "lapsed", "days": 60},
		"steps": [{"wait": "72h"}, {"mail": {"subject": "We miss you", "text": "Come by."}}]}`)
	e.tick(t, e.engine())
	line := func(id, card string, at time.Time) string {
		return fmt.Sprintf("%s,oslo-1,,sale,%s,4500,NOK,%s,\n", id, at.UTC().Format(time.RFC3339), card)
	}
	csv := "id,store,register,kind,occurred_at,amount,currency,member_card,member_email\n" +
		line("H-1", card, time.Now().Add(-80*24*time.Hour)) + line("H-2", card2, time.Now().Add(time.Minute))
	if _, err := e.db.ImportTransactionsCSV(ctx, strings.NewReader(csv)); err != nil {
		t.Fatal(err)
	}
	e.exec(t, `UPDATE flows SET exits_checked_at = NULL WHERE id = $1`, f.ID)
	e.tick(t, e.engine())
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND exit_reason = 'purchase'`, f.ID); n != 1 {
		t.Errorf("%d purchase exits, want 1 (the imported sale after the entry, not the old one)", n)
	}
}

// TestATickEntersAtMostMaxEntries: a trigger matching more members than MaxEntries enters them
// over the next ticks, each once.
func TestATickEntersAtMostMaxEntries(t *testing.T) {
	e := newEnv(t)
	for range 25 {
		_, card := e.member(t, "confirmed")
		e.sale(t, card, time.Now().Add(-90*24*time.Hour))
	}
	f := e.flow(t, `{"name": "Win back", "trigger": {"event": "lapsed", "days": 60}, `+oneMail+`}`)
	en := e.engine()
	en.MaxEntries = 10
	for i, want := range []int{10, 20, 25, 25} {
		e.tick(t, en)
		if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1`, f.ID); n != want {
			t.Errorf("after tick %d: %d entries, want %d", i+1, n, want)
		}
	}
}

// TestAStateTriggerWalksTheClubInSlices: a state trigger looks at StateSlice members a tick,
// in id order, and ends its pass (states_checked_at) after the last slice; every lapsed member
// enters once, and the next pass starts only StateEvery later.
func TestAStateTriggerWalksTheClubInSlices(t *testing.T) {
	e := newEnv(t)
	// A member who bought last week sits in the first slice and does not lapse.
	_, fresh := e.member(t, "confirmed")
	e.sale(t, fresh, time.Now().Add(-7*24*time.Hour))
	for range 7 {
		_, card := e.member(t, "confirmed")
		e.sale(t, card, time.Now().Add(-90*24*time.Hour))
	}
	f := e.flow(t, `{"name": "Win back", "trigger": {"event": "lapsed", "days": 60}, `+oneMail+`}`)
	en := e.engine()
	en.StateSlice = 3
	passEnded := func() bool {
		return e.count(t, `SELECT count(*) FROM flows WHERE id = $1 AND states_checked_at IS NOT NULL AND state_cursor IS NULL`, f.ID) == 1
	}
	// Eight members, three a tick: two of the first three lapsed, then three, then the last two.
	var started time.Time
	for i, want := range []int{2, 5, 7, 7} {
		e.tick(t, en)
		var at time.Time
		if err := e.db.Pool.QueryRow(context.Background(), `SELECT states_checked_at FROM flows WHERE id = $1`, f.ID).Scan(&at); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			started = at
		} else if !at.Equal(started) {
			t.Errorf("after tick %d: states_checked_at %v, want the pass's start %v", i+1, at, started)
		}
		if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1`, f.ID); n != want {
			t.Errorf("after tick %d: %d entries, want %d", i+1, n, want)
		}
		if ended := passEnded(); ended != (i >= 2) {
			t.Errorf("after tick %d: pass ended %v, want %v", i+1, ended, i >= 2)
		}
	}
	// A new pass, StateEvery after the last: nobody enters twice for the same lapse.
	e.exec(t, `UPDATE flows SET states_checked_at = now() - interval '1 hour' WHERE id = $1`, f.ID)
	for range 3 {
		e.tick(t, en)
	}
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1`, f.ID); n != 7 {
		t.Errorf("%d entries after a second pass, want still 7", n)
	}
	if !passEnded() {
		t.Error("the second pass did not end")
	}
}

// TestExitsWalkTheWaitingMembersInSlices: every member on the way is looked at in rounds, one
// slice of members a tick: a purchase by a member of the second slice ends their entry on the
// round's second tick. The purchase was made before the entry and uploaded after it (an offline
// till), which still counts.
func TestExitsWalkTheWaitingMembersInSlices(t *testing.T) {
	e := newEnv(t)
	_, card := e.member(t, "confirmed")
	buyer, card2 := e.member(t, "confirmed")
	e.sale(t, card, time.Now().Add(-90*24*time.Hour))
	e.sale(t, card2, time.Now().Add(-90*24*time.Hour))
	f := e.flow(t, `{"name": "Win back", "trigger": {"event": "lapsed", "days": 60},
		"steps": [{"wait": "72h"}, {"mail": {"subject": "We miss you", "text": "Come by."}}]}`)
	en := e.engine()
	en.StateSlice = 1
	for range 3 { // the pass over both members, and the first round of exits
		e.tick(t, en)
	}
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND status = 'active'`, f.ID); n != 2 {
		t.Fatalf("%d members waiting, want 2", n)
	}
	e.sale(t, card2, time.Now().Add(-3*24*time.Hour))
	e.exec(t, `UPDATE flows SET exits_checked_at = now() - interval '11 minutes' WHERE id = $1`, f.ID)
	exited := func() int {
		return e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND member_id = $2 AND exit_reason = 'purchase'`, f.ID, buyer)
	}
	e.tick(t, en)
	if exited() != 0 {
		t.Error("the buyer left on the round's first tick, which looks at the first member only")
	}
	e.tick(t, en)
	if exited() != 1 {
		t.Error("the buyer did not leave on the round's second tick")
	}
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND status = 'active'`, f.ID); n != 1 {
		t.Errorf("%d members waiting, want 1", n)
	}
}

// TestLapsedReadsTheLatestMetricsRun: with a metrics run made, the lapsed trigger starts from
// each member's last purchase day in it and checks it against the sales since: a member who
// bought after the run is not lapsed, one whose first (offline) sale arrived after the run is
// found all the same, and a flow that has caught up enters nobody again.
func TestLapsedReadsTheLatestMetricsRun(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now()
	lapsed, card := e.member(t, "confirmed")
	e.sale(t, card, now.Add(-50*24*time.Hour))
	back, card2 := e.member(t, "confirmed")
	e.sale(t, card2, now.Add(-50*24*time.Hour))
	_, card3 := e.member(t, "confirmed")
	e.sale(t, card3, now.Add(-3*24*time.Hour))
	// Every 10 days, last 40 days ago: lapsed for 3 × their gap; every 20 days: not yet.
	rhythm, card5 := e.member(t, "confirmed")
	slow, card6 := e.member(t, "confirmed")
	for i := range 4 {
		e.sale(t, card5, now.Add(-time.Duration(40+10*i)*24*time.Hour))
		e.sale(t, card6, now.Add(-time.Duration(40+20*i)*24*time.Hour))
	}
	// These sales came in when they were made: the run settles their members without a lookup.
	e.exec(t, `UPDATE transactions SET received_at = occurred_at + interval '2 seconds'`)
	zone, err := time.LoadLocation(e.db.ZoneName())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.Compute(ctx, e.db, metrics.Options{AsOf: now, Timezone: zone}); err != nil {
		t.Fatal(err)
	}
	// After the run: back buys today; late joins and a till uploads their sale of 45 days ago.
	e.sale(t, card2, now)
	late, card4 := e.member(t, "confirmed")
	e.sale(t, card4, now.Add(-45*24*time.Hour))

	f := e.flow(t, `{"name": "Win back", "trigger": {"event": "lapsed", "days": 30}, `+oneMail+`}`)
	personal := e.flow(t, `{"name": "Lapsed for them", "trigger": {"event": "lapsed", "days": 30, "personal": true, "factor": 3}, `+oneMail+`}`)
	e.tick(t, e.engine())
	got := e.entered(t, f.ID)
	if len(got) != 4 || got[lapsed] == "" || got[late] == "" || got[rhythm] == "" || got[slow] == "" {
		t.Fatalf("entered %v, want %d, %d, %d and %d (not %d, who bought after the run)", got, lapsed, late, rhythm, slow, back)
	}
	if got := e.entered(t, personal.ID); len(got) != 3 || got[lapsed] == "" || got[late] == "" || got[rhythm] == "" {
		t.Errorf("personal lapse entered %v, want %d, %d and %d (not %d, whose usual gap is 20 days)", got, lapsed, late, rhythm, slow)
	}
	day := now.Add(-50 * 24 * time.Hour).In(zone).Format(time.DateOnly)
	if got[lapsed] != "lapsed:"+day {
		t.Errorf("key %q, want lapsed:%s (the day of the last sale)", got[lapsed], day)
	}
	e.exec(t, `UPDATE flows SET states_checked_at = NULL WHERE id = $1`, f.ID)
	e.tick(t, e.engine())
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1`, f.ID); n != 4 {
		t.Errorf("%d entries after the next check, want still 4", n)
	}
}
