package models_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// Two admins who demote (or disable) each other at the same moment take turns: exactly one
// change goes through, and one enabled admin is always left.
func TestAdminsRemovingEachOtherLeaveOneAdmin(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	for round, change := range []func(id int64) error{
		func(id int64) error { return db.SetUserRole(ctx, id, models.RoleMarketer) },
		func(id int64) error { return db.DisableUser(ctx, id) },
	} {
		if _, err := db.Pool.Exec(ctx, `UPDATE console_users SET role = 'marketer'`); err != nil {
			t.Fatal(err)
		}
		a := mustUser(t, db, "a"+string(rune('0'+round))+"@example.com", models.RoleAdmin)
		b := mustUser(t, db, "b"+string(rune('0'+round))+"@example.com", models.RoleAdmin)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range []int64{a.ID, b.ID} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = change(id)
			}()
		}
		wg.Wait()
		refused := 0
		for _, err := range errs {
			switch {
			case errors.Is(err, models.ErrLastAdmin):
				refused++
			case err != nil:
				t.Fatal(err)
			}
		}
		var admins int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM console_users WHERE role = 'admin' AND disabled_at IS NULL`).Scan(&admins); err != nil {
			t.Fatal(err)
		}
		if refused != 1 || admins != 1 {
			t.Fatalf("round %d: %d refused, %d enabled admins left", round, refused, admins)
		}
	}
}

func TestDisabledUsersSessionsEnd(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	mustUser(t, db, "owner@example.com", models.RoleAdmin)
	u := mustUser(t, db, "staff@example.com", models.RoleMarketer)
	token, _, err := db.CreateSession(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.DisableUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.LookupSession(ctx, token); !errors.Is(err, models.ErrNoSession) {
		t.Fatalf("session of a disabled user: %v", err)
	}
	if _, err := db.AuthenticateUser(ctx, u.Email, "correct horse battery"); !errors.Is(err, models.ErrWrongLogin) {
		t.Fatalf("a disabled user logs in: %v", err)
	}
	// A session row made by hand (say, a race with the disabling) is refused too.
	if err := db.EnableUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	token, _, err = db.CreateSession(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE console_users SET disabled_at = now() WHERE id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.LookupSession(ctx, token); !errors.Is(err, models.ErrNoSession) {
		t.Fatalf("session of a disabled user: %v", err)
	}
	if err := db.DisableUser(ctx, 999999); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestAuditLogKeepsEntriesBounded(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	u := mustUser(t, db, "owner@example.com", models.RoleAdmin)
	long := ""
	for range 100 {
		long += "é-long-"
	}
	if err := db.RecordAudit(ctx, models.AuditEntry{UserID: &u.ID, Actor: u.Email, Action: "POST /x", Target: long, IP: "not an ip", Status: 200}); err != nil {
		t.Fatal(err)
	}
	e, err := db.FindAudit(ctx, models.AuditFilter{Actor: "OWNER@example.com"})
	if err != nil || len(e) != 1 {
		t.Fatalf("%v %v", e, err)
	}
	if len(e[0].Target) > 200 || e[0].IP != "" || e[0].Target[:7] != "é-long" {
		t.Fatalf("target %d bytes %q, ip %q", len(e[0].Target), e[0].Target[:10], e[0].IP)
	}
	if err := db.RecordAudit(ctx, models.AuditEntry{Actor: "nobody", Action: "POST /x", Status: 200}); err == nil {
		t.Fatal("an entry without a user or key was stored")
	}
}
