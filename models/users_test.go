package models_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// clock is a settable clock for db.Now.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }

// fixedClock sets db's clock to a fixed instant that tests move forward.
func fixedClock(db *models.DB) *clock {
	c := &clock{now: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	db.Now = c.Now
	return c
}

// mustUser creates a console user with the password "correct horse battery".
func mustUser(t *testing.T, db *models.DB, email, role string) *models.ConsoleUser {
	t.Helper()
	u, err := db.CreateUser(context.Background(), email, role, "correct horse battery")
	if err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	return u
}

func TestCreateUserValidatesAndRefusesDuplicates(t *testing.T) {
	db := dbtest.New(t)
	db.PasswordCost = 0 // the production cost, which the hash is checked for below
	ctx := context.Background()
	mustUser(t, db, "Anna@Example.com", models.RoleAdmin)
	for _, tc := range []struct {
		name, email, role, password, code, field string
	}{
		{"the same email in another case is a conflict", "anna@example.com", models.RoleMarketer, "correct horse battery", models.ECONFLICT, "email"},
		{"a password under 10 characters is invalid", "b@example.com", models.RoleAdmin, "123456789", models.EINVALID, "password"},
		{"a password over 72 bytes is invalid", "b@example.com", models.RoleAdmin, string(make([]byte, 73)), models.EINVALID, "password"},
		{"the register role is not a console role", "b@example.com", models.RoleRegister, "correct horse battery", models.EINVALID, "role"},
		{"an email needs an @", "anna", models.RoleAdmin, "correct horse battery", models.EINVALID, "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.CreateUser(ctx, tc.email, tc.role, tc.password)
			var e *models.Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Fields[tc.field] == "" {
				t.Fatalf("got %v, want %s on %s", err, tc.code, tc.field)
			}
		})
	}
	var hash string
	if err := db.Pool.QueryRow(ctx, `SELECT password_hash FROM console_users`).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if hash[:7] != "$2a$12$" {
		t.Errorf("hash %q is not bcrypt with cost 12", hash[:7])
	}
}

func TestAuthenticateUserLocksAfterFiveFailures(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	clk := fixedClock(db)
	mustUser(t, db, "anna@example.com", models.RoleMarketer)

	if _, err := db.AuthenticateUser(ctx, "nobody@example.com", "correct horse battery"); !errors.Is(err, models.ErrWrongLogin) {
		t.Fatalf("unknown email: %v", err)
	}
	for i := 1; i <= 4; i++ {
		if _, err := db.AuthenticateUser(ctx, "anna@example.com", "wrong"); !errors.Is(err, models.ErrWrongLogin) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if _, err := db.AuthenticateUser(ctx, "anna@example.com", "wrong"); !errors.Is(err, models.ErrAccountLocked) {
		t.Fatalf("fifth failure: %v", err)
	}
	_, err := db.AuthenticateUser(ctx, "ANNA@example.com", "correct horse battery")
	if !errors.Is(err, models.ErrAccountLocked) || err.Error() != models.LoginFailedMessage+" (account locked)" ||
		models.ErrorCode(err) != models.EUNAUTHORIZED {
		t.Fatalf("the right password while locked: %v", err)
	}
	clk.advance(models.LockDuration - time.Second)
	if _, err := db.AuthenticateUser(ctx, "anna@example.com", "correct horse battery"); !errors.Is(err, models.ErrAccountLocked) {
		t.Fatalf("a second before the lock ends: %v", err)
	}
	clk.advance(time.Second)
	u, err := db.AuthenticateUser(ctx, "anna@example.com", "correct horse battery")
	if err != nil || u.LastLoginAt == nil || !u.LastLoginAt.Equal(clk.now) {
		t.Fatalf("after the lock: %+v, %v", u, err)
	}
	// A good login starts the count again: four more failures do not lock.
	for range 4 {
		_, _ = db.AuthenticateUser(ctx, "anna@example.com", "wrong")
	}
	if _, err := db.AuthenticateUser(ctx, "anna@example.com", "correct horse battery"); err != nil {
		t.Fatalf("after four failures: %v", err)
	}
}

func TestSessionsExpireWhenIdleAndAfterTheirLifetime(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	clk := fixedClock(db)
	u := mustUser(t, db, "anna@example.com", models.RoleAdmin)

	token, s, err := db.CreateSession(ctx, u.ID)
	if err != nil || s.User.Email != "anna@example.com" || s.CSRF == "" || s.CSRF == token {
		t.Fatalf("create: %+v, %v", s, err)
	}
	var stored int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM console_sessions WHERE id_hash = $1`, []byte(token)).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("the raw token is stored: %d, %v", stored, err)
	}

	t.Run("a lookup within a minute does not write", func(t *testing.T) {
		clk.advance(30 * time.Second)
		got, err := db.LookupSession(ctx, token)
		if err != nil || !got.LastSeenAt.Equal(s.LastSeenAt) || got.CSRF != s.CSRF || got.User.Role != models.RoleAdmin {
			t.Fatalf("lookup: %+v, %v", got, err)
		}
	})
	t.Run("use slides the idle expiry", func(t *testing.T) {
		clk.advance(11 * time.Hour)
		got, err := db.LookupSession(ctx, token)
		if err != nil || !got.ExpiresAt.Equal(clk.now.Add(models.SessionIdle)) {
			t.Fatalf("lookup: %+v, %v", got, err)
		}
		clk.advance(11 * time.Hour) // 22 h after login, 11 h idle
		if _, err := db.LookupSession(ctx, token); err != nil {
			t.Fatalf("11 hours idle: %v", err)
		}
	})
	t.Run("twelve idle hours end it", func(t *testing.T) {
		clk.advance(models.SessionIdle)
		if _, err := db.LookupSession(ctx, token); !errors.Is(err, models.ErrSessionExpired) {
			t.Fatalf("idle: %v", err)
		}
		if _, err := db.LookupSession(ctx, token); !errors.Is(err, models.ErrNoSession) {
			t.Fatalf("an expired session is deleted: %v", err)
		}
	})
	t.Run("a busy session ends after seven days", func(t *testing.T) {
		token, _, err := db.CreateSession(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < 28; i++ { // used every 6 hours: 162 hours in all
			clk.advance(6 * time.Hour)
			if _, err := db.LookupSession(ctx, token); err != nil {
				t.Fatalf("after %d hours: %v", 6*i, err)
			}
		}
		clk.advance(6 * time.Hour) // 168 hours
		if _, err := db.LookupSession(ctx, token); !errors.Is(err, models.ErrSessionExpired) {
			t.Fatalf("after seven days: %v", err)
		}
	})
	t.Run("a new session clears every ended one", func(t *testing.T) {
		if _, _, err := db.CreateSession(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		clk.advance(models.SessionIdle)
		if _, _, err := db.CreateSession(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM console_sessions`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d sessions, %v; want only the new one", n, err)
		}
	})
	t.Run("delete ends a session and deleting a user ends theirs", func(t *testing.T) {
		a, _, _ := db.CreateSession(ctx, u.ID)
		b, _, _ := db.CreateSession(ctx, u.ID)
		if err := db.DeleteSession(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, err := db.LookupSession(ctx, a); !errors.Is(err, models.ErrNoSession) {
			t.Fatalf("deleted: %v", err)
		}
		if _, err := db.LookupSession(ctx, b); err != nil {
			t.Fatalf("the other session: %v", err)
		}
		if _, err := db.Pool.Exec(ctx, `DELETE FROM console_users WHERE id = $1`, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.LookupSession(ctx, b); !errors.Is(err, models.ErrNoSession) {
			t.Fatalf("after the user is deleted: %v", err)
		}
	})
}

func TestSearchMembers(t *testing.T) {
	db, p := fixture(t)
	ctx := context.Background()
	no := false
	var cards []string
	for i, in := range []models.MemberInput{
		{Email: "kari.nordmann@example.com", Name: "Kari Nordmann"},
		{Email: "kari@example.org", Name: "Kari Hansen"},
		{Email: "per@example.com", Name: "Per 100% Olsen"},
		{Email: "ola@example.com", Name: "Ola_Nordmann"},
	} {
		in.MarketingConsent = &no
		m, err := db.CreateMember(ctx, p, in, models.ConsentEvidence{Source: "till"})
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		cards = append(cards, m.Card)
	}
	erased, err := db.CreateMember(ctx, p, models.MemberInput{Email: "gone@example.com", Name: "Kari Gone", MarketingConsent: &no}, models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.EraseMember(ctx, erased.ID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, q string
		want    []string // names, in order
	}{
		{"a card finds its member", cards[2], []string{"Per 100% Olsen"}},
		{"an exact email comes first", "KARI@example.org", []string{"Kari Hansen"}},
		{"an email prefix finds both", "kari", []string{"Kari Hansen", "Kari Nordmann"}},
		{"a part of the name in any case", "nordMANN", []string{"Kari Nordmann", "Ola_Nordmann"}},
		{"a percent sign is literal", "100%", []string{"Per 100% Olsen"}},
		{"an underscore is literal", "a_n", []string{"Ola_Nordmann"}},
		{"an erased member's card finds nothing", erased.Card, nil},
		{"an empty query finds nothing", "  ", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits, err := db.SearchMembers(ctx, tc.q, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, h := range hits {
				got = append(got, h.Name)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("search %q: %v, want %v", tc.q, got, tc.want)
			}
		})
	}
	t.Run("purchases come newest first, consents oldest first", func(t *testing.T) {
		m, err := db.LookupMember(ctx, cards[0], "", "")
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range []string{"P-1", "P-2"} {
			s := sale(id, int64(1000*(i+1)))
			s.OccurredAt = fmt.Sprintf("2026-11-0%dT10:00:00+01:00", i+1)
			s.Member = &models.MemberRef{Card: m.Card}
			if _, _, err := db.RecordTransaction(ctx, p, s); err != nil {
				t.Fatal(err)
			}
		}
		ps, err := db.FindMemberPurchases(ctx, m.ID, 50)
		if err != nil || len(ps) != 2 || ps[0].TxnID != "P-2" || ps[0].Amount != 2000 || ps[0].Items != 1 || ps[0].Store != "oslo-1" {
			t.Fatalf("purchases %+v, %v", ps, err)
		}
		if ps[0].OccurredAt.Location().String() != "Europe/Oslo" {
			t.Errorf("purchase time in %v, want the store's zone", ps[0].OccurredAt.Location())
		}
		cs, err := db.FindMemberConsents(ctx, m.ID)
		if err != nil || len(cs) != 1 || cs[0].Granted {
			t.Fatalf("consents %+v, %v", cs, err)
		}
	})
}
