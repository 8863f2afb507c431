package campaigns

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var testNow = time.Date(2026, 11, 20, 14, 3, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// fixture is a database with a store, a member (Kari Nordmann, card 7012345678908) and a segment.
type fixture struct {
	db        *models.DB
	memberID  int64
	segmentID int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := dbtest.New(t)
	ctx := context.Background()
	if _, err := db.CreateStore(ctx, models.StoreInput{Code: "oslo-1", Name: "Oslo", Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}
	token, err := db.CreateAPIKey(ctx, models.RoleRegister, "oslo-1", "till-1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := db.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	no := false
	m, err := db.CreateMember(ctx, p, models.MemberInput{Card: "7012345678908", Email: "kari@example.com",
		Name: "Kari Nordmann", MarketingConsent: &no}, models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, memberID: m.ID}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO segments (name, rules) VALUES ('Everyone', '{"all": []}') RETURNING id`).Scan(&f.segmentID); err != nil {
		t.Fatal(err)
	}
	return f
}

func wantInvalid(t *testing.T, err error, field string) *models.Error {
	t.Helper()
	var me *models.Error
	if !errors.As(err, &me) || me.Code != models.EINVALID {
		t.Fatalf("error %v, want EINVALID naming %s", err, field)
	}
	if _, ok := me.Fields[field]; !ok {
		t.Errorf("fields %v do not name %s", me.Fields, field)
	}
	return me
}

func validInput(segmentID int64) Input {
	return Input{Name: ptr("November vinyl"), Subject: ptr("Hi {{.Member.FirstName}}, new records are in"),
		HTML: ptr("<p>Hello {{.Member.Name}}</p>"), Text: ptr("Hello {{.Member.Name}}"),
		SegmentID: &segmentID, HoldoutPercent: ptr(10.0)}
}

func TestCreateValidates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		name  string
		edit  func(in *Input)
		field string
	}{
		{"a campaign needs a name", func(in *Input) { in.Name = ptr("  ") }, "name"},
		{"a campaign needs a subject", func(in *Input) { in.Subject = nil }, "subject"},
		{"a subject over 200 characters is refused", func(in *Input) { in.Subject = ptr(strings.Repeat("x", 201)) }, "subject"},
		{"a campaign needs an HTML or a text body", func(in *Input) { in.HTML, in.Text = nil, ptr("") }, "html"},
		{"a segment that does not exist is refused", func(in *Input) { in.SegmentID = ptr(f.segmentID + 100) }, "segment_id"},
		{"a holdout over 50 percent is refused", func(in *Input) { in.HoldoutPercent = ptr(50.5) }, "holdout_percent"},
		{"a negative holdout is refused", func(in *Input) { in.HoldoutPercent = ptr(-1.0) }, "holdout_percent"},
		{"a template error is refused with its line", func(in *Input) { in.HTML = ptr("<p>\n{{if}}</p>") }, "html"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := validInput(f.segmentID)
			tc.edit(&in)
			_, err := Create(ctx, f.db, testFrom, in)
			wantInvalid(t, err, tc.field)
		})
	}
	t.Run("a valid campaign is stored as a draft", func(t *testing.T) {
		c, err := Create(ctx, f.db, testFrom, validInput(f.segmentID))
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != StatusDraft || c.HoldoutPercent != 10 || c.SegmentID == nil || *c.SegmentID != f.segmentID || c.From != "" {
			t.Errorf("stored %+v", c)
		}
		got, err := Get(ctx, f.db, c.ID)
		if err != nil || got.Subject != c.Subject {
			t.Errorf("Get = %+v, %v", got, err)
		}
	})
	t.Run("a campaign is saved without a default sender configured", func(t *testing.T) {
		if _, err := Create(ctx, f.db, "", validInput(f.segmentID)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c, err := Create(ctx, f.db, testFrom, validInput(f.segmentID))
	if err != nil {
		t.Fatal(err)
	}
	setStatus := func(t *testing.T, status string) {
		t.Helper()
		if _, err := f.db.Pool.Exec(ctx, `UPDATE campaigns SET status = $2 WHERE id = $1`, c.ID, status); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a draft's content changes and the rest stays", func(t *testing.T) {
		got, err := Update(ctx, f.db, testFrom, c.ID, Input{Subject: ptr("New {{.Member.Tier}}")})
		if err != nil {
			t.Fatal(err)
		}
		if got.Subject != "New {{.Member.Tier}}" || got.Name != "November vinyl" || got.HoldoutPercent != 10 {
			t.Errorf("updated %+v", got)
		}
	})
	t.Run("a change that breaks a template is refused and nothing changes", func(t *testing.T) {
		_, err := Update(ctx, f.db, testFrom, c.ID, Input{Text: ptr("{{.Nope}}")})
		wantInvalid(t, err, "text")
		if got, _ := Get(ctx, f.db, c.ID); got.Text != "Hello {{.Member.Name}}" {
			t.Errorf("text is now %q", got.Text)
		}
	})
	for _, status := range []string{StatusScheduled, StatusSending, StatusSent, StatusCancelled} {
		t.Run("a "+status+" campaign's content may not change", func(t *testing.T) {
			setStatus(t, status)
			_, err := Update(ctx, f.db, testFrom, c.ID, Input{Subject: ptr("Changed")})
			if models.ErrorCode(err) != models.ECONFLICT {
				t.Errorf("error %v, want ECONFLICT", err)
			}
		})
	}
	t.Run("a sent campaign may be renamed", func(t *testing.T) {
		setStatus(t, StatusSent)
		got, err := Update(ctx, f.db, testFrom, c.ID, Input{Name: ptr("November vinyl (old)")})
		if err != nil || got.Name != "November vinyl (old)" {
			t.Errorf("rename = %+v, %v", got, err)
		}
	})
	t.Run("a paused campaign's content may change", func(t *testing.T) {
		setStatus(t, StatusPaused)
		if _, err := Update(ctx, f.db, testFrom, c.ID, Input{HoldoutPercent: ptr(0.0)}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a campaign that does not exist is not found", func(t *testing.T) {
		_, err := Update(ctx, f.db, testFrom, c.ID+1, Input{Name: ptr("x")})
		if models.ErrorCode(err) != models.ENOTFOUND {
			t.Errorf("error %v, want ENOTFOUND", err)
		}
	})
	t.Run("the list holds the campaign", func(t *testing.T) {
		list, err := List(ctx, f.db)
		if err != nil || len(list) != 1 || list[0].ID != c.ID {
			t.Errorf("List = %+v, %v", list, err)
		}
	})
}

func TestPreviewUsesTheMembersData(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	in := validInput(f.segmentID)
	in.Text = ptr("{{.Member.Card}} {{with .Member.Tier}}{{.}}{{else}}no tier{{end}}")
	c, err := Create(ctx, f.db, testFrom, in)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{BaseURL: "https://club.example", DefaultFrom: testFrom}
	out, err := Preview(ctx, f.db, cfg, c.ID, f.memberID)
	if err != nil {
		t.Fatal(err)
	}
	if out.Subject != "Hi Kari, new records are in" || !strings.Contains(out.HTML, "Hello Kari Nordmann") ||
		!strings.HasPrefix(out.Text, "7012345678908 no tier") {
		t.Errorf("preview %+v", out)
	}
	if !strings.Contains(out.HTML, "https://club.example/unsubscribe?token="+PlaceholderToken) {
		t.Errorf("preview lacks the unsubscribe link: %s", out.HTML)
	}
	_, err = Preview(ctx, f.db, cfg, c.ID, f.memberID+1000)
	wantInvalid(t, err, "member_id")
}

func TestTestSend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	in := validInput(f.segmentID)
	in.HTML = ptr("<p>Hello {{.Member.FirstName}}</p>{{.Barcode}}")
	c, err := Create(ctx, f.db, testFrom, in)
	if err != nil {
		t.Fatal(err)
	}
	srv := smtptest.New(t)
	sender, err := mailer.New(srv.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sender.Close() })
	cfg := Config{BaseURL: "https://club.example", DefaultFrom: testFrom}
	var memberState string
	state := func() string {
		var s string
		if err := f.db.Pool.QueryRow(ctx, `SELECT m::text FROM members m WHERE id = $1`, f.memberID).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	memberState = state()

	t.Run("bad addresses are refused by index", func(t *testing.T) {
		_, err := TestSend(ctx, f.db, sender, cfg, c.ID, []string{"a@shop.example", "Kari <k@shop.example>"}, nil)
		wantInvalid(t, err, "addresses.1")
		_, err = TestSend(ctx, f.db, sender, cfg, c.ID, nil, nil)
		wantInvalid(t, err, "addresses")
		_, err = TestSend(ctx, f.db, sender, cfg, c.ID, strings.Split(strings.Repeat("a@b.example,", 11), ",")[:11], nil)
		wantInvalid(t, err, "addresses")
		if n := len(srv.Messages()); n != 0 {
			t.Errorf("%d mails sent for refused requests", n)
		}
	})
	t.Run("it mails exactly the given addresses with the sample member's data", func(t *testing.T) {
		n, err := TestSend(ctx, f.db, sender, cfg, c.ID, []string{"a@shop.example", "b@shop.example", "A@shop.example"}, &f.memberID)
		if err != nil || n != 2 {
			t.Fatalf("TestSend = %d, %v; want 2 (the repeat sent once)", n, err)
		}
		msgs := srv.Messages()
		if len(msgs) != 2 {
			t.Fatalf("%d messages", len(msgs))
		}
		for i, want := range []string{"a@shop.example", "b@shop.example"} {
			m := msgs[i]
			if len(m.To) != 1 || m.To[0] != want {
				t.Errorf("message %d went to %v, want %s", i, m.To, want)
			}
			if got := m.Header.Get("Subject"); got != "[TEST] Hi Kari, new records are in" {
				t.Errorf("subject %q", got)
			}
			if !strings.Contains(m.Header.Get("List-Unsubscribe"), "<https://club.example/unsubscribe?token="+PlaceholderToken+">") ||
				m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
				t.Errorf("headers %v", m.Header)
			}
			if !strings.Contains(string(m.Data), "image/png") {
				t.Error("the barcode image is not in the mail")
			}
		}
	})
	t.Run("no member's state changed", func(t *testing.T) {
		if got := state(); got != memberState {
			t.Errorf("member was %s, now %s", memberState, got)
		}
	})
}
