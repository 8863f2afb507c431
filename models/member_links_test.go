package models_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

func TestMailboxKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"kari@example.com", "kari@example.com"},
		{"Kari@Example.COM", "kari@example.com"},
		{"kari+news@example.com", "kari@example.com"},
		{"KARI+a+b@example.com", "kari@example.com"},
		{"kari.nordmann@example.com", "kari.nordmann@example.com"},
		{"+tag@example.com", "@example.com"},
	} {
		if got := models.MailboxKey(c.in); got != c.want {
			t.Errorf("MailboxKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// activeMember is a confirmed web sign-up with email, its consent confirmed.
func activeMember(t *testing.T, db *models.DB, email string) int64 {
	t.Helper()
	res := mustJoin(t, db, joinInput(email))
	if _, _, err := db.ConfirmMember(context.Background(), res.MemberID, webEv); err != nil {
		t.Fatal(err)
	}
	return res.MemberID
}

func TestAMemberLinkIsMailedAndWorksOnce(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	id := activeMember(t, db, "kari@example.com")

	req, err := db.RequestMemberLink(ctx, id, models.LinkExport, "nb")
	if err != nil || !req.Queued {
		t.Fatalf("request: %+v, %v", req, err)
	}
	var kind, to, lang string
	var linkID int64
	if err := db.Pool.QueryRow(ctx, `SELECT kind, to_addr, language, link_id FROM club_mail WHERE member_id = $1 ORDER BY id DESC LIMIT 1`,
		id).Scan(&kind, &to, &lang, &linkID); err != nil {
		t.Fatal(err)
	}
	if kind != models.MailLinkExport || to != "kari@example.com" || lang != "nb" || linkID != req.LinkID {
		t.Errorf("queued %s to %s in %s for link %d; want link_export to the member in nb for link %d", kind, to, lang, linkID, req.LinkID)
	}
	if err := db.EraseMemberByLink(ctx, req.LinkID); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("an export link used to erase: %v, want ENOTFOUND", err)
	}
	if x, err := db.ExportMemberByLink(ctx, req.LinkID); err != nil || x.Member.ID != id {
		t.Fatalf("first use: %v", err)
	}
	if _, err := db.ExportMemberByLink(ctx, req.LinkID); !errors.Is(err, models.ErrLinkUsed) {
		t.Errorf("second use: %v, want ErrLinkUsed", err)
	}
}

func TestConcurrentUsesOfOneLinkDoItOnce(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	id := activeMember(t, db, "kari@example.com")
	if _, err := db.Unsubscribe(ctx, id, webEv); err != nil {
		t.Fatal(err)
	}
	req, err := db.RequestMemberLink(ctx, id, models.LinkConsent, "en")
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = db.GrantConsentByLink(ctx, req.LinkID, "v2", models.ConsentEvidence{IP: "192.0.2.9"})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, models.ErrLinkUsed):
			t.Errorf("unexpected error %v", err)
		}
	}
	grants := countRows(t, db, `SELECT count(*) FROM consents WHERE granted AND source = 'email_link'`)
	if ok != 1 || grants != 1 {
		t.Errorf("%d uses succeeded, %d grants recorded; want 1 and 1", ok, grants)
	}
}

func TestAMemberLinkExpiresAfterAnHour(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	id := activeMember(t, db, "kari@example.com")
	req, err := db.RequestMemberLink(ctx, id, models.LinkErase, "en")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(models.MemberLinkTTL)
	if err := db.EraseMemberByLink(ctx, req.LinkID); !errors.Is(err, models.ErrTokenExpired) {
		t.Errorf("erase after an hour: %v, want ErrTokenExpired", err)
	}
	if m, err := db.FindMemberByID(ctx, id); err != nil || m.Status != models.StatusActive {
		t.Errorf("member after an expired link: %+v, %v", m, err)
	}
	now = now.Add(-time.Second)
	if err := db.EraseMemberByLink(ctx, req.LinkID); err != nil {
		t.Errorf("erase within the hour: %v", err)
	}
	if m, _ := db.FindMemberByID(ctx, id); m.Status != models.StatusErased {
		t.Errorf("status %q, want erased", m.Status)
	}
}

func TestMemberLinkRequestsNeedAnAddressAndShareTheCap(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	id := activeMember(t, db, "kari+shop@example.com") // the confirmation: 1 of 3
	for i := range 3 {
		req, err := db.RequestMemberLink(ctx, id, models.LinkExport, "en")
		if err != nil {
			t.Fatal(err)
		}
		if want := i < 2; req.Queued != want {
			t.Errorf("request %d queued %v, want %v", i+1, req.Queued, want)
		}
	}
	if links := countRows(t, db, `SELECT count(*) FROM member_links`); links != 2 {
		t.Errorf("%d links recorded, want 2 (none beyond the cap)", links)
	}
	// Another address of the same mailbox is capped too.
	other := mustJoin(t, db, joinInput("KARI@example.com"))
	if kinds := queued(t, db, other.MemberID); len(kinds) != 0 {
		t.Errorf("a sign-up with the same mailbox queued %v beyond the cap", kinds)
	}

	if _, err := db.Pool.Exec(ctx, `UPDATE members SET email = NULL WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	_, err := db.RequestMemberLink(ctx, id, models.LinkExport, "en")
	wantCode(t, err, models.EINVALID)
}

func TestConcurrentSignUpsWithPlusAddressesKeepTheCap(t *testing.T) {
	db, _ := fixture(t)
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			in := joinInput("kari+" + string(rune('a'+i)) + "@example.com")
			in.Phone = ""
			if _, err := db.Join(context.Background(), in, webEv); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if mails := countRows(t, db, `SELECT count(*) FROM club_mail`); mails != models.MaxJoinMailsPerHour {
		t.Errorf("%d mails queued for %d sign-ups to one mailbox, want %d", mails, n, models.MaxJoinMailsPerHour)
	}
}
