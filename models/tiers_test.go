package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models"
)

func tier(name string, minSpend int64, discount float64) models.TierInput {
	return models.TierInput{Name: name, MinSpend: models.NewInt(minSpend), DiscountPercent: &discount}
}

func TestReplaceTiersValidatesTheLadder(t *testing.T) {
	db := bareDB(t)
	ctx := context.Background()
	many := make([]models.TierInput, models.MaxTiers+1)
	for i := range many {
		many[i] = tier("T"+strings.Repeat("x", i), int64(i), 1)
	}
	cases := []struct {
		name  string
		in    []models.TierInput
		field string
	}{
		{"an empty name is refused", []models.TierInput{tier("", 0, 1)}, "tiers.0.name"},
		{"a name over 40 characters is refused", []models.TierInput{tier(strings.Repeat("å", 41), 0, 1)}, "tiers.0.name"},
		{"a repeated name is refused", []models.TierInput{tier("Gold", 0, 1), tier("Gold", 10, 2)}, "tiers.1.name"},
		{"a repeated threshold is refused", []models.TierInput{tier("Silver", 10, 1), tier("Gold", 10, 2)}, "tiers.1.min_spend"},
		{"a negative threshold is refused", []models.TierInput{tier("Gold", -1, 1)}, "tiers.0.min_spend"},
		{"a missing threshold is refused", []models.TierInput{{Name: "Gold", DiscountPercent: new(float64)}}, "tiers.0.min_spend"},
		{"a decimal threshold is refused", []models.TierInput{{Name: "Gold", MinSpend: models.Int{Present: true, Bad: "not an integer"}, DiscountPercent: new(float64)}}, "tiers.0.min_spend"},
		{"a discount over 100 is refused", []models.TierInput{tier("Silver", 0, 1), tier("Gold", 10, 100.01)}, "tiers.1.discount_percent"},
		{"a negative discount is refused", []models.TierInput{tier("Gold", 0, -1)}, "tiers.0.discount_percent"},
		{"a discount with three decimals is refused", []models.TierInput{tier("Gold", 0, 2.125)}, "tiers.0.discount_percent"},
		{"a missing discount is refused", []models.TierInput{{Name: "Gold", MinSpend: models.NewInt(0)}}, "tiers.0.discount_percent"},
		{"more than the maximum number of tiers is refused", many, "tiers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.ReplaceTiers(ctx, tc.in)
			e, ok := err.(*models.Error)
			if !ok || e.Code != models.EINVALID {
				t.Fatalf("error %v, want an invalid error", err)
			}
			if _, ok := e.Fields[tc.field]; !ok {
				t.Errorf("fields %v do not name %q", e.Fields, tc.field)
			}
		})
	}

	t.Run("a valid ladder is stored lowest threshold first and replaces the old one", func(t *testing.T) {
		if _, err := db.ReplaceTiers(ctx, []models.TierInput{tier("Old", 5, 1)}); err != nil {
			t.Fatal(err)
		}
		got, err := db.ReplaceTiers(ctx, []models.TierInput{tier("Gold", 500000, 10.5), tier("Silver", 100000, 5)})
		if err != nil {
			t.Fatal(err)
		}
		want := []models.Tier{{Name: "Silver", MinSpend: 100000, DiscountPercent: 5}, {Name: "Gold", MinSpend: 500000, DiscountPercent: 10.5}}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("ladder %+v, want %+v", got, want)
		}
	})
	t.Run("an empty ladder removes every tier", func(t *testing.T) {
		got, err := db.ReplaceTiers(ctx, nil)
		if err != nil || len(got) != 0 {
			t.Errorf("ladder %+v, %v; want none", got, err)
		}
	})
}

// bareDB is the fixture's database, for tests that need no principal.
func bareDB(t *testing.T) *models.DB {
	t.Helper()
	db, _ := fixture(t)
	return db
}

func TestLookupReturnsTheTierOfTheTrailingYearsNetSpend(t *testing.T) {
	db, reg := fixture(t)
	ctx := context.Background()
	m, err := db.CreateMember(ctx, reg, models.MemberInput{Name: "Kari", MarketingConsent: new(bool)}, models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	record := func(t *testing.T, id, kind string, amount int64, ago time.Duration) {
		t.Helper()
		in := sale(id, amount)
		in.Kind = kind
		in.OccurredAt = time.Now().Add(-ago).Format(time.RFC3339)
		in.Member = &models.MemberRef{Card: m.Card}
		if kind == models.KindRefund {
			in.Items = nil
		}
		if _, _, err := db.RecordTransaction(ctx, reg, in); err != nil {
			t.Fatalf("record %s: %v", id, err)
		}
	}
	wantTier := func(t *testing.T, name string, discount float64) {
		t.Helper()
		got, err := db.LookupMember(ctx, m.Card, "", "")
		if err != nil {
			t.Fatal(err)
		}
		gotName := "<none>"
		if got.Tier != nil {
			gotName = *got.Tier
		}
		if gotName != name || got.DiscountPercent != discount {
			t.Errorf("tier %s with %v%% discount, want %s with %v%%", gotName, got.DiscountPercent, name, discount)
		}
	}
	day := 24 * time.Hour

	record(t, "S-1", models.KindSale, 150000, 10*day)
	t.Run("with no tiers configured a member has no tier and no discount", func(t *testing.T) {
		wantTier(t, "<none>", 0)
	})
	if _, err := db.ReplaceTiers(ctx, []models.TierInput{tier("Silver", 200000, 5), tier("Gold", 500000, 10.5)}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name     string
		id, kind string
		amount   int64
		ago      time.Duration
		tier     string
		discount float64
	}{
		{"a member below every threshold has no tier", "", "", 0, 0, "<none>", 0},
		{"a purchase reaching the threshold exactly moves the member up at once", "S-2", models.KindSale, 50000, time.Minute, "Silver", 5},
		{"a purchase older than 365 days does not count", "S-3", models.KindSale, 1000000, 366 * day, "Silver", 5},
		{"a purchase 364 days ago counts", "S-4", models.KindSale, 100000, 364 * day, "Silver", 5},
		{"a purchase taking the member above the top threshold gives the top tier", "S-5", models.KindSale, 300000, 0, "Gold", 10.5},
		{"a refund taking the member below a threshold moves them down a tier", "F-1", models.KindRefund, 100001, 0, "Silver", 5},
		{"refunds below the lowest threshold leave no tier", "F-2", models.KindRefund, 400000, 0, "<none>", 0},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.id != "" {
				record(t, s.id, s.kind, s.amount, s.ago)
			}
			wantTier(t, s.tier, s.discount)
		})
	}
}

// TestTheSQLRulesAreInlined guards the SQL functions that hold shared rules (migrations 00016 and
// 00017): each must stay inlinable, or the queries that call it lose their index conditions and
// pay a call per row. An inlined function leaves no trace of its name in the plan.
func TestTheSQLRulesAreInlined(t *testing.T) {
	db := bareDB(t)
	for function, query := range map[string]string{
		"net_amount":       `SELECT member_id, sum(net_amount(kind, amount_minor)) FROM transactions GROUP BY 1`,
		"in_trailing_year": `SELECT count(*) FROM transactions WHERE member_id = 1 AND in_trailing_year(occurred_at, now(), 'UTC')`,
		"tier_for_spend":   `SELECT m.id, tt.name FROM members m CROSS JOIN LATERAL tier_for_spend(m.id::numeric) tt`,
		"member_tier":      `SELECT name, discount_percent FROM member_tier(1, now(), 'UTC')`,
	} {
		rows, _ := db.Pool.Query(context.Background(), "EXPLAIN (VERBOSE) "+query)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if plan := strings.Join(lines, "\n"); err != nil || strings.Contains(plan, function) || strings.Contains(plan, "Function Scan") {
			t.Errorf("%s is not inlined (%v):\n%s", function, err, plan)
		}
	}
}

// TestTheTrailingYearIsTierWindowDaysLong checks models.TierWindowDays against in_trailing_year,
// the window's one home: [as-of − 365 calendar days, as-of) in the shop's zone.
func TestTheTrailingYearIsTierWindowDaysLong(t *testing.T) {
	db := bareDB(t)
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	asOf := time.Date(2026, 4, 1, 0, 0, 0, 0, oslo) // summer time, and so is a year earlier
	var first, before, last, at bool
	err = db.Pool.QueryRow(context.Background(), `
		SELECT in_trailing_year($1, $2, 'Europe/Oslo'), in_trailing_year($1 - interval '1 microsecond', $2, 'Europe/Oslo'),
		       in_trailing_year($2 - interval '1 microsecond', $2, 'Europe/Oslo'), in_trailing_year($2, $2, 'Europe/Oslo')`,
		asOf.AddDate(0, 0, -models.TierWindowDays), asOf).Scan(&first, &before, &last, &at)
	if err != nil || !first || before || !last || at {
		t.Errorf("window start counts %v (want true), a microsecond before %v (false), the last instant %v (true), as-of %v (false); %v",
			first, before, last, at, err)
	}
}
