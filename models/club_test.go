package models_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

var webEv = models.ConsentEvidence{IP: "192.0.2.7", UserAgent: "Firefox/140"}

func joinInput(email string) models.JoinInput {
	return models.JoinInput{Name: "Kari Nordmann", Email: email, Phone: "+47 912 34 567", HomeStore: "oslo-1",
		MarketingConsent: true, Language: "nb", ConsentTextVersion: "2026-11"}
}

func mustJoin(t *testing.T, db *models.DB, in models.JoinInput) *models.JoinResult {
	t.Helper()
	res, err := db.Join(context.Background(), in, webEv)
	if err != nil {
		t.Fatalf("join %s: %v", in.Email, err)
	}
	return res
}

// queued lists the kinds of unsent mail queued for member id, oldest first.
func queued(t *testing.T, db *models.DB, id int64) []string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT kind FROM club_mail WHERE member_id = $1 AND sent_at IS NULL ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, k)
	}
	return kinds
}

// funnelTotals returns the web and till totals for today.
func funnelTotals(t *testing.T, db *models.DB, store string) (web, till models.FunnelRow) {
	t.Helper()
	now := time.Now()
	_, totals, err := db.JoinFunnel(context.Background(), now.AddDate(0, 0, -1), now.AddDate(0, 0, 1), store)
	if err != nil {
		t.Fatal(err)
	}
	return totals[0], totals[1]
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if models.ErrorCode(err) != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

func TestJoinCreatesAPendingMemberAndQueuesTheConfirmation(t *testing.T) {
	db, _ := fixture(t)
	res := mustJoin(t, db, joinInput("Kari@Example.com "))
	if res.Outcome != models.JoinCreated {
		t.Fatalf("outcome %q, want created", res.Outcome)
	}
	m, err := db.FindMemberByID(context.Background(), res.MemberID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != models.StatusPending || m.MarketingConsent != models.ConsentPending || *m.Email != "kari@example.com" ||
		*m.Phone != "+4791234567" || m.HomeStore != "oslo-1" || m.Language != "nb" || m.Source != "web" || !models.ValidCard(m.Card) {
		t.Errorf("member %+v", m)
	}
	if got := queued(t, db, m.ID); len(got) != 1 || got[0] != models.MailConfirm {
		t.Errorf("queued %v, want [confirm]", got)
	}
	if n := countRows(t, db, `SELECT count(*) FROM consents WHERE member_id = $1 AND granted AND source = 'join'
		AND text_version = '2026-11' AND host(ip) = '192.0.2.7' AND user_agent = 'Firefox/140'`, m.ID); n != 1 {
		t.Errorf("%d consent rows with the sign-up's evidence, want 1", n)
	}
	if web, _ := funnelTotals(t, db, "oslo-1"); web.Submissions != 1 {
		t.Errorf("web submissions %d, want 1", web.Submissions)
	}
	// The mail language is the one the form was shown in.
	if n := countRows(t, db, `SELECT count(*) FROM club_mail WHERE member_id = $1 AND language = 'nb' AND to_addr = 'kari@example.com'`, m.ID); n != 1 {
		t.Errorf("confirmation mail not addressed in nb to the normalised address")
	}
}

func TestJoinWithoutConsentRecordsNoConsent(t *testing.T) {
	db, _ := fixture(t)
	in := joinInput("ola@example.com")
	in.MarketingConsent = false
	res := mustJoin(t, db, in)
	m, _ := db.FindMemberByID(context.Background(), res.MemberID)
	if m.MarketingConsent != models.ConsentNone {
		t.Errorf("marketing_consent %q, want none", m.MarketingConsent)
	}
	if n := countRows(t, db, `SELECT count(*) FROM consents WHERE member_id = $1`, m.ID); n != 0 {
		t.Errorf("%d consent rows, want 0", n)
	}
}

func TestJoinValidatesEachField(t *testing.T) {
	db, _ := fixture(t)
	_, err := db.Join(context.Background(), models.JoinInput{Name: " ", Email: "not-an-email", Phone: "12", HomeStore: "nowhere"}, webEv)
	var e *models.Error
	if !errors.As(err, &e) || e.Code != models.EINVALID {
		t.Fatalf("error %v, want invalid", err)
	}
	for _, f := range []string{"name", "email", "phone", "home_store"} {
		if _, ok := e.Fields[f]; !ok {
			t.Errorf("fields %v do not name %s", e.Fields, f)
		}
	}
	if n := countRows(t, db, `SELECT count(*) FROM members`); n != 0 {
		t.Errorf("%d members after an invalid sign-up", n)
	}
}

func TestJoiningTwiceGivesOneMemberAndTheRightMail(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	first := mustJoin(t, db, joinInput("kari@example.com"))
	again := mustJoin(t, db, joinInput("KARI@example.com"))
	if again.Outcome != models.JoinResentConfirmation || again.MemberID != first.MemberID {
		t.Errorf("second join of a pending member: %+v, want resent_confirmation of member %d", again, first.MemberID)
	}
	if got := queued(t, db, first.MemberID); len(got) != 2 || got[1] != models.MailConfirm {
		t.Errorf("queued %v, want two confirmations", got)
	}
	if _, _, err := db.ConfirmMember(ctx, first.MemberID, webEv); err != nil {
		t.Fatal(err)
	}
	third := mustJoin(t, db, joinInput("kari@example.com"))
	if third.Outcome != models.JoinAlreadyMember || third.MemberID != first.MemberID {
		t.Errorf("join of an active member: %+v, want already_member", third)
	}
	if got := queued(t, db, first.MemberID); got[len(got)-1] != models.MailAlreadyMember {
		t.Errorf("queued %v, want already_member last", got)
	}
	if n := countRows(t, db, `SELECT count(*) FROM members`); n != 1 {
		t.Errorf("%d members, want 1", n)
	}
}

// The join form answers the same for every address, so it must not become a way to flood
// someone's inbox: repeated sign-ups with one address queue a few mails an hour, then none.
func TestRepeatedJoinsDoNotFloodTheInbox(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	first := mustJoin(t, db, joinInput("busy@example.com"))
	if _, _, err := db.ConfirmMember(ctx, first.MemberID, webEv); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if res := mustJoin(t, db, joinInput("busy@example.com")); res.Outcome != models.JoinAlreadyMember {
			t.Fatalf("outcome %s, want already_member", res.Outcome)
		}
	}
	// The confirmation counts too: the cap is on all mail the public can cause, per mailbox.
	n := 0
	for _, kind := range queued(t, db, first.MemberID) {
		if kind == models.MailAlreadyMember || kind == models.MailConfirm {
			n++
		}
	}
	if n != models.MaxJoinMailsPerHour {
		t.Errorf("%d sign-up mails queued for 11 sign-ups in a row, want %d", n, models.MaxJoinMailsPerHour)
	}
}

func TestConcurrentJoinsWithOneEmailMakeOneMember(t *testing.T) {
	db, _ := fixture(t)
	const n = 8
	var wg sync.WaitGroup
	results := make([]*models.JoinResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := joinInput("race@example.com")
			in.Phone = fmt.Sprintf("+47900000%02d", i)
			results[i], errs[i] = db.Join(context.Background(), in, webEv)
		}()
	}
	wg.Wait()
	created := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
		if results[i].Outcome == models.JoinCreated {
			created++
		}
	}
	if members := countRows(t, db, `SELECT count(*) FROM members`); members != 1 || created != 1 {
		t.Errorf("%d members, %d created outcomes; want 1 and 1", members, created)
	}
	// One per submission up to the hourly cap; the member row lock makes the cap exact.
	if mails := countRows(t, db, `SELECT count(*) FROM club_mail WHERE kind = 'confirm'`); mails != min(n, models.MaxJoinMailsPerHour) {
		t.Errorf("%d confirmation mails, want %d (one per submission up to the hourly cap)", mails, min(n, models.MaxJoinMailsPerHour))
	}
}

func TestJoinWithAnotherMembersPhoneDropsThePhone(t *testing.T) {
	db, _ := fixture(t)
	a := mustJoin(t, db, joinInput("a@example.com"))
	b := mustJoin(t, db, joinInput("b@example.com")) // same phone
	if b.Outcome != models.JoinCreated {
		t.Fatalf("outcome %q", b.Outcome)
	}
	ma, _ := db.FindMemberByID(context.Background(), a.MemberID)
	mb, _ := db.FindMemberByID(context.Background(), b.MemberID)
	if ma.Phone == nil || mb.Phone != nil {
		t.Errorf("phones %v and %v: the first keeps it, the second is stored without", ma.Phone, mb.Phone)
	}
}

func TestConfirmActivatesRecordsConsentAndWelcomesOnce(t *testing.T) {
	db, p := fixture(t)
	ctx := context.Background()
	// A sale on the member's email before they joined is linked when they confirm.
	s := sale("R-1", 5000)
	s.Member = &models.MemberRef{Email: "kari@example.com"}
	if _, _, err := db.RecordTransaction(ctx, p, s); err != nil {
		t.Fatal(err)
	}
	res := mustJoin(t, db, joinInput("kari@example.com"))
	ev := models.ConsentEvidence{IP: "2001:db8::1", UserAgent: "Safari/18"}
	m, first, err := db.ConfirmMember(ctx, res.MemberID, ev)
	if err != nil {
		t.Fatal(err)
	}
	if !first || m.Status != models.StatusActive || m.MarketingConsent != models.ConsentConfirmed {
		t.Errorf("first %v, member %+v", first, m)
	}
	if n := countRows(t, db, `SELECT count(*) FROM consents WHERE member_id = $1 AND granted AND source = 'confirm'
		AND host(ip) = '2001:db8::1' AND user_agent = 'Safari/18' AND text_version = '2026-11'`, m.ID); n != 1 {
		t.Errorf("%d confirmation consent rows with evidence and text version, want 1", n)
	}
	if n := countRows(t, db, `SELECT count(*) FROM members WHERE id = $1 AND confirmed_at IS NOT NULL`, m.ID); n != 1 {
		t.Error("confirmed_at not set")
	}
	if n := countRows(t, db, `SELECT count(*) FROM transactions WHERE member_id = $1`, m.ID); n != 1 {
		t.Errorf("%d earlier sales linked on confirmation, want 1", n)
	}
	_, again, err := db.ConfirmMember(ctx, res.MemberID, ev)
	if err != nil || again {
		t.Errorf("second confirmation: first=%v err=%v, want false, nil", again, err)
	}
	if got := queued(t, db, m.ID); len(got) != 2 || got[1] != models.MailWelcome {
		t.Errorf("queued %v, want [confirm welcome]", got)
	}
	if n := countRows(t, db, `SELECT count(*) FROM consents WHERE member_id = $1`, m.ID); n != 2 {
		t.Errorf("%d consent rows after two clicks, want 2", n)
	}
	if web, _ := funnelTotals(t, db, ""); web.Confirmations != 1 {
		t.Errorf("web confirmations %d, want 1", web.Confirmations)
	}
}

func TestConcurrentConfirmationsWelcomeOnce(t *testing.T) {
	db, _ := fixture(t)
	res := mustJoin(t, db, joinInput("kari@example.com"))
	var wg sync.WaitGroup
	firsts := make(chan bool, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, first, err := db.ConfirmMember(context.Background(), res.MemberID, webEv)
			if err != nil {
				t.Error(err)
			}
			firsts <- first
		}()
	}
	wg.Wait()
	close(firsts)
	n := 0
	for f := range firsts {
		if f {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d confirmations were first, want 1", n)
	}
	if w := countRows(t, db, `SELECT count(*) FROM club_mail WHERE kind = 'welcome'`); w != 1 {
		t.Errorf("%d welcome mails, want 1", w)
	}
}

func TestConfirmingErasedOrPurgedMembersIsNotFound(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	erased := mustJoin(t, db, joinInput("erased@example.com"))
	if err := db.EraseMember(ctx, erased.MemberID); err != nil {
		t.Fatal(err)
	}
	_, _, err := db.ConfirmMember(ctx, erased.MemberID, webEv)
	wantCode(t, err, models.ENOTFOUND)
	purged := mustJoin(t, db, joinInput("purged@example.com"))
	if _, err := db.PurgeUnconfirmed(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, _, err = db.ConfirmMember(ctx, purged.MemberID, webEv)
	wantCode(t, err, models.ENOTFOUND)
}

func TestTillEnrolmentWithConsentStartsTheDoubleOptIn(t *testing.T) {
	db, p := fixture(t)
	ctx := context.Background()
	yes := true
	m, err := db.CreateMember(ctx, p, models.MemberInput{Email: "till@example.com", Name: "Per", MarketingConsent: &yes, Language: "nb"},
		models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	if got := queued(t, db, m.ID); len(got) != 1 || got[0] != models.MailConsentConfirm {
		t.Errorf("queued %v, want [consent_confirm]", got)
	}
	if _, till := funnelTotals(t, db, "oslo-1"); till.Submissions != 1 {
		t.Errorf("till submissions %d, want 1", till.Submissions)
	}
	c, first, err := db.ConfirmMember(ctx, m.ID, webEv)
	if err != nil || !first || c.MarketingConsent != models.ConsentConfirmed || c.Language != "nb" {
		t.Fatalf("confirm till consent: %+v first=%v err=%v", c, first, err)
	}
	if got := queued(t, db, m.ID); len(got) != 1 {
		t.Errorf("queued %v: a till member gets no welcome mail", got)
	}
	if _, till := funnelTotals(t, db, "oslo-1"); till.Confirmations != 1 || *till.ConfirmationRate != 1 {
		t.Errorf("till funnel %+v, want one confirmation, rate 1", till)
	}
	no := false
	plain, err := db.CreateMember(ctx, p, models.MemberInput{Email: "plain@example.com", MarketingConsent: &no}, models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	if got := queued(t, db, plain.ID); len(got) != 0 || plain.Language != "en" {
		t.Errorf("no consent: queued %v, language %q; want nothing, en", got, plain.Language)
	}
}

func TestUnsubscribeRecordsAWithdrawal(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	res := mustJoin(t, db, joinInput("kari@example.com"))
	if _, _, err := db.ConfirmMember(ctx, res.MemberID, webEv); err != nil {
		t.Fatal(err)
	}
	ev := models.ConsentEvidence{IP: "198.51.100.1", UserAgent: "Mail client"}
	changed, err := db.Unsubscribe(ctx, res.MemberID, ev)
	if err != nil || !changed {
		t.Fatalf("unsubscribe: %v, %v", changed, err)
	}
	m, _ := db.FindMemberByID(ctx, res.MemberID)
	if m.MarketingConsent != models.ConsentWithdrawn {
		t.Errorf("marketing_consent %q", m.MarketingConsent)
	}
	if n := countRows(t, db, `SELECT count(*) FROM consents WHERE member_id = $1 AND NOT granted AND source = 'unsubscribe'
		AND host(ip) = '198.51.100.1'`, m.ID); n != 1 {
		t.Errorf("%d withdrawal rows, want 1", n)
	}
	if changed, err := db.Unsubscribe(ctx, res.MemberID, ev); err != nil || changed {
		t.Errorf("repeated unsubscribe: %v, %v; want false, nil", changed, err)
	}
	_, err = db.Unsubscribe(ctx, 999999, ev)
	wantCode(t, err, models.ENOTFOUND)
}

func TestUpdatePreferences(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	if _, err := db.CreateStore(ctx, models.StoreInput{Code: "bergen-1", Name: "Bergen", Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}
	in := joinInput("kari@example.com")
	in.MarketingConsent = false
	res := mustJoin(t, db, in)
	name, store, lang, yes := "Kari N.", "bergen-1", "en", true
	m, err := db.UpdatePreferences(ctx, res.MemberID, models.PreferencesInput{Name: &name, HomeStore: &store, Language: &lang,
		MarketingConsent: &yes, ConsentTextVersion: "2026-12"}, webEv)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != name || m.HomeStore != "bergen-1" || m.Language != "en" || m.MarketingConsent != models.ConsentConfirmed {
		t.Errorf("member %+v", m)
	}
	if n := countRows(t, db, `SELECT count(*) FROM consents WHERE member_id = $1 AND granted AND source = 'preferences' AND text_version = '2026-12'`, m.ID); n != 1 {
		t.Errorf("%d consent rows from preferences, want 1", n)
	}
	no := false
	if m, err = db.UpdatePreferences(ctx, res.MemberID, models.PreferencesInput{MarketingConsent: &no}, webEv); err != nil || m.MarketingConsent != models.ConsentWithdrawn {
		t.Errorf("withdraw: %+v %v", m, err)
	}
	bad, long := "nowhere", string(make([]byte, 201))
	_, err = db.UpdatePreferences(ctx, res.MemberID, models.PreferencesInput{HomeStore: &bad, Name: &long}, webEv)
	var e *models.Error
	if !errors.As(err, &e) || e.Fields["home_store"] == "" || e.Fields["name"] == "" {
		t.Errorf("error %v, want invalid home_store and name", err)
	}
	if err := db.EraseMember(ctx, res.MemberID); err != nil {
		t.Fatal(err)
	}
	_, err = db.UpdatePreferences(ctx, res.MemberID, models.PreferencesInput{Name: &name}, webEv)
	wantCode(t, err, models.ENOTFOUND)
}

func TestExportContainsConsentsAndTransactions(t *testing.T) {
	db, p := fixture(t)
	ctx := context.Background()
	yes := true
	m, err := db.CreateMember(ctx, p, models.MemberInput{Email: "kari@example.com", MarketingConsent: &yes}, models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	s := sale("R-1", 12950)
	s.Member = &models.MemberRef{Card: m.Card}
	if _, _, err := db.RecordTransaction(ctx, p, s); err != nil {
		t.Fatal(err)
	}
	x, err := db.ExportMember(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if x.Member.Card != m.Card || len(x.Consents) != 1 || len(x.Transactions) != 1 {
		t.Fatalf("export %+v", x)
	}
	tx := x.Transactions[0]
	if tx.ID != "R-1" || tx.Store != "oslo-1" || tx.Amount != 12950 || len(tx.Items) != 1 || tx.Items[0].SKU != "LP-1234" {
		t.Errorf("exported transaction %+v", tx)
	}
}

func TestEraseRemovesPersonalDataAndKeepsTheFigures(t *testing.T) {
	db, p := fixture(t)
	ctx := context.Background()
	res := mustJoin(t, db, joinInput("kari@example.com"))
	m, _, err := db.ConfirmMember(ctx, res.MemberID, webEv)
	if err != nil {
		t.Fatal(err)
	}
	for i, amount := range []int64{5000, 7000} {
		s := sale(fmt.Sprintf("R-%d", i), amount)
		s.Member = &models.MemberRef{Card: m.Card, Email: "kari@example.com"}
		if _, _, err := db.RecordTransaction(ctx, p, s); err != nil {
			t.Fatal(err)
		}
	}
	// A campaign mailed the member: the recipient row copies the address and the name.
	for _, q := range []string{
		`INSERT INTO campaigns (name, subject, text, status) VALUES ('Vinyl', 'New records', 'hi', 'sent')`,
		`INSERT INTO campaign_runs (campaign_id, scheduled_for, status) SELECT id, now(), 'sent' FROM campaigns`,
		`INSERT INTO campaign_recipients (run_id, member_id, email, status, sent_at, name)
		 SELECT r.id, m.id, m.email, 'sent', now(), m.name FROM campaign_runs r, members m WHERE m.id = $1`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, m.ID)
		}
		if _, err := db.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	revenue := func() int {
		return countRows(t, db, `SELECT coalesce(sum(amount_minor), 0)::int FROM transactions`)
	}
	before := revenue()
	if err := db.EraseMember(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.EraseMember(ctx, m.ID); err != nil {
		t.Errorf("erasing twice: %v", err)
	}
	if after := revenue(); after != before {
		t.Errorf("revenue %d after erasure, was %d", after, before)
	}
	got, err := db.FindMemberByID(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != models.StatusErased || got.Name != "" || got.Email != nil || got.Phone != nil || got.MarketingConsent != models.ConsentWithdrawn {
		t.Errorf("erased member %+v", got)
	}
	for _, q := range []string{
		`SELECT count(*) FROM transactions WHERE member_id = $1 AND (member_card IS NOT NULL OR member_email IS NOT NULL OR member_phone IS NOT NULL)`,
		`SELECT count(*) FROM consents WHERE member_id = $1 AND (ip IS NOT NULL OR user_agent <> '')`,
		`SELECT count(*) FROM club_mail WHERE member_id = $1`,
		`SELECT count(*) FROM members WHERE id = $1 AND erased_at IS NULL`,
		`SELECT count(*) FROM campaign_recipients WHERE member_id = $1 AND (email <> '' OR name IS NOT NULL)`,
	} {
		if n := countRows(t, db, q, m.ID); n != 0 {
			t.Errorf("%s: %d, want 0", q, n)
		}
	}
	if n := countRows(t, db, `SELECT count(*) FROM transactions WHERE member_id = $1`, m.ID); n != 2 {
		t.Errorf("%d transactions still on the anonymous member, want 2", n)
	}
	if n := countRows(t, db, `SELECT count(*) FROM campaign_recipients WHERE member_id = $1 AND status = 'sent'`, m.ID); n != 1 {
		t.Errorf("%d sent mails still counted for the anonymous member, want 1", n)
	}
	if _, err := db.LookupMember(ctx, m.Card, "", ""); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("lookup of the erased card: %v, want not found", err)
	}
	_, err = db.ExportMember(ctx, m.ID)
	wantCode(t, err, models.ENOTFOUND)
	// A later sale on the old card is not linked to the erased member, now or by the sweep.
	later := sale("R-later", 3000)
	later.Member = &models.MemberRef{Card: m.Card}
	tr, _, err := db.RecordTransaction(ctx, p, later)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Member.Matched {
		t.Errorf("a sale on an erased card was linked: %+v", tr.Member)
	}
	if _, err := db.LinkUnmatched(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db, `SELECT count(*) FROM transactions WHERE txn_id = 'R-later' AND member_id IS NOT NULL`); n != 0 {
		t.Error("the sweep linked a sale to an erased member")
	}
}

func TestPurgeRemovesOnlyOldPendingSignUps(t *testing.T) {
	db, p := fixture(t)
	ctx := context.Background()
	old := mustJoin(t, db, joinInput("old@example.com"))
	confirmed := mustJoin(t, db, joinInput("confirmed@example.com"))
	if _, _, err := db.ConfirmMember(ctx, confirmed.MemberID, webEv); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE members SET joined_at = now() - interval '10 days'`); err != nil {
		t.Fatal(err)
	}
	fresh := mustJoin(t, db, joinInput("fresh@example.com"))
	// A sale that presented the old sign-up's email got linked to it; the purge unlinks it.
	s := sale("R-1", 4000)
	s.Member = &models.MemberRef{Email: "old@example.com"}
	if _, _, err := db.RecordTransaction(ctx, p, s); err != nil {
		t.Fatal(err)
	}
	n, err := db.PurgeUnconfirmed(ctx, time.Now().Add(-7*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want 1", n, err)
	}
	if _, err := db.FindMemberByID(ctx, old.MemberID); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("old pending sign-up still there: %v", err)
	}
	for _, id := range []int64{confirmed.MemberID, fresh.MemberID} {
		if _, err := db.FindMemberByID(ctx, id); err != nil {
			t.Errorf("member %d: %v", id, err)
		}
	}
	if n := countRows(t, db, `SELECT count(*) FROM transactions WHERE txn_id = 'R-1' AND member_id IS NULL AND member_email = 'old@example.com'`); n != 1 {
		t.Error("the purged member's sale is not back to unmatched")
	}
}

func TestJoinFunnelRates(t *testing.T) {
	db, p := fixture(t)
	ctx := context.Background()
	for i := range 4 { // four visitors
		if err := db.CountJoinView(ctx, "oslo-1", fmt.Sprintf("192.0.2.%d", i+1), "Firefox"); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CountJoinView(ctx, "no-such-store", "192.0.2.1", "Firefox"); err != nil {
		t.Fatal(err)
	}
	a := mustJoin(t, db, joinInput("a@example.com"))
	in := joinInput("b@example.com")
	in.Phone = ""
	mustJoin(t, db, in)
	if _, _, err := db.ConfirmMember(ctx, a.MemberID, webEv); err != nil {
		t.Fatal(err)
	}
	yes := true
	if _, err := db.CreateMember(ctx, p, models.MemberInput{Email: "t@example.com", MarketingConsent: &yes}, models.ConsentEvidence{Source: "till"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	days, totals, err := db.JoinFunnel(ctx, now.AddDate(0, 0, -1), now.AddDate(0, 0, 1), "oslo-1")
	if err != nil {
		t.Fatal(err)
	}
	web, till := totals[0], totals[1]
	if web.Source != "web" || web.Views != 4 || web.Submissions != 2 || web.Confirmations != 1 ||
		*web.ConversionRate != 0.5 || *web.ConfirmationRate != 0.5 {
		t.Errorf("web totals %+v", web)
	}
	if till.Source != "till" || till.Submissions != 1 || till.ConversionRate != nil || *till.ConfirmationRate != 0 {
		t.Errorf("till totals %+v", till)
	}
	if len(days) != 2 || days[0].Store != "oslo-1" || days[0].Day != now.UTC().Format(time.DateOnly) {
		t.Errorf("days %+v", days)
	}
	_, all, err := db.JoinFunnel(ctx, now, now, "")
	if err != nil {
		t.Fatal(err)
	}
	if all[0].Views != 5 {
		t.Errorf("views over all stores %d, want 5 (one without a store)", all[0].Views)
	}
	_, _, err = db.JoinFunnel(ctx, now, now.AddDate(0, 0, -1), "")
	wantCode(t, err, models.EINVALID)
	_, _, err = db.JoinFunnel(ctx, now, now, "nowhere")
	wantCode(t, err, models.EINVALID)
}

func TestFunnelDaysAreInTheConfiguredTimezone(t *testing.T) {
	db, _ := fixture(t)
	tz, err := time.LoadLocation("Pacific/Kiritimati") // UTC+14: already tomorrow at 12:00 UTC
	if err != nil {
		t.Skip("no tzdata")
	}
	db.Timezone = tz
	db.Now = func() time.Time { return time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) }
	if err := db.CountJoinView(context.Background(), "", "192.0.2.1", "Firefox"); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	days, _, err := db.JoinFunnel(context.Background(), day, day, "")
	if err != nil || len(days) != 1 || days[0].Day != "2026-11-21" {
		t.Errorf("days %+v, %v; want one row on 2026-11-21", days, err)
	}
}

func TestClaimClubMailNeverHandsOneMailToTwoSenders(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	const mails = 40
	for i := range mails {
		in := joinInput(fmt.Sprintf("m%d@example.com", i))
		in.Phone = ""
		mustJoin(t, db, in)
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := db.ClaimClubMail(ctx, 3, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, m := range got {
					seen[m.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != mails {
		t.Errorf("%d mails claimed, want %d", len(seen), mails)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("mail %d was claimed %d times", id, n)
		}
	}
}

func TestClubMailLeaseRetryAndGiveUp(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	in := joinInput("a@example.com")
	mustJoin(t, db, in)
	in.Email, in.Phone = "b@example.com", ""
	mustJoin(t, db, in)
	got, err := db.ClaimClubMail(ctx, 10, time.Hour)
	if err != nil || len(got) != 2 || got[0].Attempts != 1 || got[0].Kind != models.MailConfirm || got[0].To != "a@example.com" {
		t.Fatalf("claim: %+v, %v", got, err)
	}
	if again, _ := db.ClaimClubMail(ctx, 10, time.Hour); len(again) != 0 {
		t.Errorf("leased mail claimed again: %+v", again)
	}
	if err := db.ClubMailSent(ctx, got[0].ID); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Second)
	if err := db.ClubMailFailed(ctx, got[1].ID, errors.New("421 try later"), &past); err != nil {
		t.Fatal(err)
	}
	retry, err := db.ClaimClubMail(ctx, 10, time.Hour)
	if err != nil || len(retry) != 1 || retry[0].ID != got[1].ID || retry[0].Attempts != 2 {
		t.Fatalf("retry claim: %+v, %v", retry, err)
	}
	if err := db.ClubMailFailed(ctx, retry[0].ID, errors.New("550 no such user"), nil); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db, `SELECT count(*) FROM club_mail WHERE given_up_at IS NOT NULL AND last_error = '550 no such user'`); n != 1 {
		t.Error("permanent failure not recorded")
	}
	// An expired lease (a sender died) makes the mail due again.
	mustJoin(t, db, models.JoinInput{Name: "C", Email: "c@example.com"})
	if _, err := db.ClaimClubMail(ctx, 10, -time.Second); err != nil {
		t.Fatal(err)
	}
	if again, _ := db.ClaimClubMail(ctx, 10, time.Hour); len(again) != 1 {
		t.Errorf("mail with an expired lease not claimed again: %+v", again)
	}
}

// birthdayField reports the field error on birthday of err, failing when there is none.
func birthdayField(t *testing.T, err error) string {
	t.Helper()
	var e *models.Error
	if !errors.As(err, &e) || e.Code != models.EINVALID || e.Fields["birthday"] == "" {
		t.Fatalf("error %v, want invalid birthday", err)
	}
	return e.Fields["birthday"]
}

func TestBirthdaysAreTakenEverywhereAMemberIsMade(t *testing.T) {
	db, p := fixture(t)
	ctx := context.Background()
	no := false

	t.Run("the till enrols with a birthday without a year", func(t *testing.T) {
		m, err := db.CreateMember(ctx, p, models.MemberInput{Name: "Per", Birthday: "--02-29", MarketingConsent: &no}, models.ConsentEvidence{Source: "till"})
		if err != nil {
			t.Fatal(err)
		}
		if m.Birthday.String() != "--02-29" {
			t.Errorf("created with birthday %q", m.Birthday)
		}
		got, err := db.FindMemberByID(ctx, m.ID)
		if err != nil || got.Birthday.String() != "--02-29" || got.Birthday.Year() != 0 {
			t.Errorf("read back %q (year %d), %v", got.Birthday, got.Birthday.Year(), err)
		}
		l, err := db.LookupMember(ctx, m.Card, "", "")
		if err != nil || l.Birthday.String() != "--02-29" {
			t.Errorf("the till's lookup shows %q, %v", l.Birthday, err)
		}
	})

	t.Run("the till refuses an impossible birthday", func(t *testing.T) {
		_, err := db.CreateMember(ctx, p, models.MemberInput{Name: "Per", Birthday: "2023-02-29", MarketingConsent: &no}, models.ConsentEvidence{Source: "till"})
		birthdayField(t, err)
	})

	t.Run("the join form keeps a full date for a new member only", func(t *testing.T) {
		in := joinInput("kari@example.com")
		in.Birthday = "1990-05-17"
		res := mustJoin(t, db, in)
		m, err := db.FindMemberByID(ctx, res.MemberID)
		if err != nil || m.Birthday.String() != "1990-05-17" {
			t.Fatalf("joined with birthday %q, %v", m.Birthday, err)
		}
		in.Birthday = "--01-01" // the form changes nobody's details
		if again := mustJoin(t, db, in); again.Outcome != models.JoinResentConfirmation {
			t.Fatalf("joining again: %s", again.Outcome)
		}
		if m, _ := db.FindMemberByID(ctx, res.MemberID); m.Birthday.String() != "1990-05-17" {
			t.Errorf("joining again changed the birthday to %q", m.Birthday)
		}
	})

	t.Run("the join form refuses a birthday in the future", func(t *testing.T) {
		in := joinInput("future@example.com")
		in.Birthday = time.Now().AddDate(1, 0, 0).Format(time.DateOnly)
		_, err := db.Join(ctx, in, webEv)
		if why := birthdayField(t, err); !strings.Contains(why, "future") {
			t.Errorf("birthday: %s", why)
		}
	})
}

func TestPreferencesChangeAndClearTheBirthday(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	res := mustJoin(t, db, joinInput("kari@example.com"))
	set := func(b string) (*models.Member, error) {
		return db.UpdatePreferences(ctx, res.MemberID, models.PreferencesInput{Birthday: &b}, webEv)
	}
	m, err := set("--05-17")
	if err != nil || m.Birthday.String() != "--05-17" {
		t.Fatalf("set: %q, %v", m.Birthday, err)
	}
	m, err = set("1985-05-17")
	if err != nil || m.Birthday.String() != "1985-05-17" {
		t.Fatalf("change: %q, %v", m.Birthday, err)
	}
	name := "Kari N."
	if m, err = db.UpdatePreferences(ctx, res.MemberID, models.PreferencesInput{Name: &name}, webEv); err != nil || m.Birthday.String() != "1985-05-17" {
		t.Fatalf("a change without the birthday left %q, %v", m.Birthday, err)
	}
	for _, bad := range []string{"--02-30", "1899-01-01", "17 May"} {
		_, err := set(bad)
		birthdayField(t, err)
	}
	if m, err = set(""); err != nil || !m.Birthday.IsZero() {
		t.Fatalf("clear: %q, %v", m.Birthday, err)
	}
	if n := countRows(t, db, `SELECT count(*) FROM members WHERE id = $1 AND birth_date IS NULL`, res.MemberID); n != 1 {
		t.Error("clearing the birthday left birth_date set")
	}
}

func TestExportShowsAndErasureClearsTheBirthday(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	in := joinInput("kari@example.com")
	in.Birthday = "--02-29"
	res := mustJoin(t, db, in)
	x, err := db.ExportMember(ctx, res.MemberID)
	if err != nil {
		t.Fatal(err)
	}
	if x.Member.Birthday.String() != "--02-29" {
		t.Errorf("exported birthday %q", x.Member.Birthday)
	}
	if err := db.EraseMember(ctx, res.MemberID); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db, `SELECT count(*) FROM members WHERE id = $1 AND birth_date IS NOT NULL`, res.MemberID); n != 0 {
		t.Error("erasure kept the birthday")
	}
}
