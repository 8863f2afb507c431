package segments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// fixedClock makes the fixture's as-of time "now", so live counts see the fixture's figures.
func fixedClock(f *fixture) {
	f.db.Now = func() time.Time { return f.asOf }
	f.db.Timezone = f.asOf.Location()
}

func TestSavedSegmentsLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fixedClock(f)
	ctx := context.Background()
	// active members of oslo-1: ada (mailable) and ben (no consent).
	oslo := json.RawMessage(`{"all": [{"field": "home_store", "op": "eq", "value": "oslo-1"}, {"field": "status", "op": "eq", "value": "active"}]}`)
	created, err := Create(ctx, f.db, SavedInput{Name: "  Oslo regulars ", Description: "active in Oslo", Rules: oslo})
	if err != nil {
		t.Fatal(err)
	}
	if created.Name != "Oslo regulars" || created.ID == 0 || !created.CreatedAt.Equal(f.asOf) {
		t.Errorf("created %+v, want the trimmed name, an id and the clock's time", created)
	}

	t.Run("the stored rules parse back to the same tree", func(t *testing.T) {
		tree, err := Parse(created.Rules)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := Parse(oslo)
		got, _ := json.Marshal(tree)
		exp, _ := json.Marshal(want)
		if string(got) != string(exp) {
			t.Errorf("stored %s, want %s", got, exp)
		}
	})
	t.Run("a name differing only in case is a conflict on name", func(t *testing.T) {
		_, err := Create(ctx, f.db, SavedInput{Name: "OSLO REGULARS", Rules: oslo})
		var e *models.Error
		if !errors.As(err, &e) || e.Code != models.ECONFLICT || e.Fields["name"] == "" {
			t.Errorf("got %v, want ECONFLICT on name", err)
		}
	})
	t.Run("an invalid segment names every bad field", func(t *testing.T) {
		_, err := Create(ctx, f.db, SavedInput{Name: strings.Repeat("x", 81), Description: strings.Repeat("d", 1001),
			Rules: json.RawMessage(`{"all": [{"field": "favourite", "op": "eq", "value": 1}]}`)})
		var e *models.Error
		if !errors.As(err, &e) || e.Code != models.EINVALID {
			t.Fatalf("got %v, want EINVALID", err)
		}
		for _, field := range []string{"name", "description", "rules.all.0.field"} {
			if e.Fields[field] == "" {
				t.Errorf("fields %v do not name %s", e.Fields, field)
			}
		}
	})
	t.Run("missing rules and a blank name are invalid", func(t *testing.T) {
		_, err := Create(ctx, f.db, SavedInput{Name: "   "})
		var e *models.Error
		if !errors.As(err, &e) || e.Fields["name"] == "" || e.Fields["rules"] != "required" {
			t.Errorf("got %v, want errors on name and rules", err)
		}
	})

	// Everyone with an email: ada, ben, cai, eva; mailable: ada, eva.
	emails, err := Create(ctx, f.db, SavedInput{Name: "anyone with email", Rules: json.RawMessage(`{"field": "email_domain", "op": "is_not_null"}`)})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the list holds cached counts by name, none before the first count", func(t *testing.T) {
		list, err := List(ctx, f.db)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range list {
			got = append(got, c.Name)
			if c.Members != nil || c.Mailable != nil || c.CountedAt != nil {
				t.Errorf("%s: counts %v/%v at %v before any count, want nil", c.Name, c.Members, c.Mailable, c.CountedAt)
			}
		}
		if !slices.Equal(got, []string{"anyone with email", "Oslo regulars"}) {
			t.Fatalf("names %v", got)
		}
		for _, id := range []int64{emails.ID, created.ID} {
			if counted, err := Recount(ctx, f.db, id, time.Time{}, false); err != nil || !counted {
				t.Fatalf("recount %d: %v, %v", id, counted, err)
			}
		}
		list, err = List(ctx, f.db)
		if err != nil {
			t.Fatal(err)
		}
		counts := func(c Counted) string {
			if c.Members == nil || c.Mailable == nil || c.CountedAt == nil {
				return "none"
			}
			return fmt.Sprintf("%d/%d", *c.Members, *c.Mailable)
		}
		if counts(list[0]) != "4/2" || counts(list[1]) != "2/1" {
			t.Errorf("counts %s and %s, want 4/2 and 2/1", counts(list[0]), counts(list[1]))
		}
		if at := list[0].CountedAt; at == nil || !at.Equal(f.db.Now()) {
			t.Errorf("counted at %v, want the fixed clock's %v", at, f.db.Now())
		}
	})
	t.Run("get shows the counts and a sample", func(t *testing.T) {
		d, err := Get(ctx, f.db, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Members != 2 || d.Mailable != 1 || len(d.Sample) != 2 || d.Sample[0].Name != "ada" || d.Sample[1].Name != "ben" {
			t.Errorf("got %+v", d)
		}
	})
	t.Run("a sample alone, without counting", func(t *testing.T) {
		sample, err := SavedSample(ctx, f.db, created.ID, SavedSampleSize)
		if err != nil || len(sample) != 2 || sample[0].Name != "ada" || sample[1].Name != "ben" {
			t.Errorf("got %+v, %v; want ada and ben", sample, err)
		}
		if _, err := SavedSample(ctx, f.db, 1<<40, 1); models.ErrorCode(err) != models.ENOTFOUND {
			t.Errorf("no such segment: %v, want ENOTFOUND", err)
		}
	})
	t.Run("members are paged by id with a cursor", func(t *testing.T) {
		var names []string
		after, pages := int64(0), 0
		for {
			page, err := Members(ctx, f.db, emails.ID, 3, after)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, m := range page.Members {
				names = append(names, m.Name)
				if m.ID != f.ids[m.Name] {
					t.Errorf("member %+v does not match the fixture", m)
				}
			}
			if page.NextAfter == nil {
				break
			}
			after = *page.NextAfter
		}
		if pages != 2 || !slices.Equal(names, []string{"ada", "ben", "cai", "eva"}) {
			t.Errorf("got %v in %d pages, want ada ben cai eva in 2", names, pages)
		}
		page, err := Members(ctx, f.db, emails.ID, 4, 0)
		if err != nil {
			t.Fatal(err)
		}
		if page.NextAfter != nil || len(page.Members) != 4 {
			t.Errorf("an exact last page: %d members, next %v; want 4 and none", len(page.Members), page.NextAfter)
		}
		if home := page.Members[0].HomeStore; home == nil || *home != "oslo-1" {
			t.Errorf("ada's home store %v, want oslo-1", home)
		}
		if page.Members[3].HomeStore != nil {
			t.Errorf("eva has no home store, got %v", *page.Members[3].HomeStore)
		}
	})
	t.Run("a page size out of range is invalid", func(t *testing.T) {
		for _, limit := range []int{0, MaxMembersPage + 1} {
			_, err := Members(ctx, f.db, emails.ID, limit, 0)
			var e *models.Error
			if !errors.As(err, &e) || e.Fields["limit"] == "" {
				t.Errorf("limit %d: got %v", limit, err)
			}
		}
	})
	t.Run("a patch changes only what it holds", func(t *testing.T) {
		rules := json.RawMessage(`{"field": "home_store", "op": "eq", "value": "bergen-1"}`)
		u, err := Update(ctx, f.db, created.ID, SavedPatch{Rules: rules})
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != "Oslo regulars" || u.Description != "active in Oslo" {
			t.Errorf("patch of rules changed %+v", u)
		}
		d, err := Get(ctx, f.db, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Members != 2 { // dag and fil
			t.Errorf("after the patch %d members, want 2", d.Members)
		}
		name := "Bergen"
		if u, err = Update(ctx, f.db, created.ID, SavedPatch{Name: &name}); err != nil || u.Name != "Bergen" {
			t.Errorf("rename: %v %+v", err, u)
		}
	})
	t.Run("a patch with bad rules or a taken name is refused", func(t *testing.T) {
		_, err := Update(ctx, f.db, created.ID, SavedPatch{Rules: json.RawMessage(`{"field": "status", "op": "like", "value": "x"}`)})
		var e *models.Error
		if !errors.As(err, &e) || e.Code != models.EINVALID || e.Fields["rules.op"] == "" {
			t.Errorf("bad operator: got %v", err)
		}
		taken := "Anyone With Email"
		if _, err := Update(ctx, f.db, created.ID, SavedPatch{Name: &taken}); models.ErrorCode(err) != models.ECONFLICT {
			t.Errorf("taken name: got %v", err)
		}
		if _, err := Update(ctx, f.db, 999999, SavedPatch{Name: &taken}); models.ErrorCode(err) != models.ENOTFOUND {
			t.Errorf("unknown id: got %v", err)
		}
	})
	t.Run("trees lists every saved tree by id", func(t *testing.T) {
		trees, skipped, err := Trees(ctx, f.db.Pool)
		if err != nil {
			t.Fatal(err)
		}
		if len(trees) != 2 || trees[0].ID != created.ID || trees[1].ID != emails.ID || len(skipped) != 0 {
			t.Errorf("got %+v, skipped %v", trees, skipped)
		}
	})
	t.Run("a segment a campaign uses is not deleted", func(t *testing.T) {
		var campaign int64
		err := f.db.Pool.QueryRow(ctx, `INSERT INTO campaigns (name, subject, text, segment_id)
			VALUES ('uses it', 'hello', 'hi', $1) RETURNING id`, emails.ID).Scan(&campaign)
		if err != nil {
			t.Fatal(err)
		}
		if err := Delete(ctx, f.db, emails.ID); models.ErrorCode(err) != models.ECONFLICT {
			t.Errorf("delete of a segment in use: got %v, want conflict", err)
		}
		if _, err := Get(ctx, f.db, emails.ID); err != nil {
			t.Errorf("the segment is gone after a refused delete: %v", err)
		}
		if _, err := f.db.Pool.Exec(ctx, `DELETE FROM campaigns WHERE id = $1`, campaign); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("delete removes it once", func(t *testing.T) {
		if err := Delete(ctx, f.db, created.ID); err != nil {
			t.Fatal(err)
		}
		if err := Delete(ctx, f.db, created.ID); models.ErrorCode(err) != models.ENOTFOUND {
			t.Errorf("second delete: got %v", err)
		}
		if _, err := Get(ctx, f.db, created.ID); models.ErrorCode(err) != models.ENOTFOUND {
			t.Errorf("get after delete: got %v", err)
		}
		if _, err := Members(ctx, f.db, created.ID, 10, 0); models.ErrorCode(err) != models.ENOTFOUND {
			t.Errorf("members after delete: got %v", err)
		}
	})
}

// A stored tree that no longer validates (a field left the registry) is the server's problem:
// Trees skips it, and reading it is an internal error, not a 422 for the caller.
func TestAStoredTreeThatNoLongerParsesIsSkippedNotBlamedOnTheCaller(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	var id int64
	if err := f.db.Pool.QueryRow(ctx, `INSERT INTO segments (name, rules) VALUES ('old', '{"field": "gone", "op": "eq", "value": 1}') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	trees, skipped, err := Trees(ctx, f.db.Pool)
	if err != nil || len(trees) != 0 || !slices.Equal(skipped, []int64{id}) {
		t.Errorf("got %v, skipped %v, %v; want only %d skipped", trees, skipped, err, id)
	}
	if _, err := Get(ctx, f.db, id); err == nil || models.ErrorCode(err) != models.EINTERNAL {
		t.Errorf("get: got %v, want an internal error", err)
	}
}
