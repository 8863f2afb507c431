package models_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regulars/regulars/models"
)

const txnHeader = "id,store,register,kind,occurred_at,amount,currency,member_card,member_email\n"

// importFile writes content to a file in t.TempDir and imports it as transactions or members.
func importFile(t *testing.T, db *models.DB, what, content string) (*models.ImportResult, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), what+".csv")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if what == "members" {
		return db.ImportMembersCSV(context.Background(), f)
	}
	return db.ImportTransactionsCSV(context.Background(), f)
}

func wantCounts(t *testing.T, res *models.ImportResult, err error, read, inserted, present int64) {
	t.Helper()
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if res.Read != read || res.Inserted != inserted || res.Present != present {
		t.Fatalf("read %d, inserted %d, present %d; want %d, %d, %d", res.Read, res.Inserted, res.Present, read, inserted, present)
	}
}

// wantBadLines checks that err is an ImportError with code naming exactly lines.
func wantBadLines(t *testing.T, err error, code string, lines ...int) *models.ImportError {
	t.Helper()
	var ie *models.ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("got %v, want an import error naming lines %v", err, lines)
	}
	var got []int
	for _, l := range ie.Lines {
		got = append(got, l.Line)
	}
	if ie.Code != code || len(got) != len(lines) || ie.Total != len(lines) {
		t.Fatalf("got %s lines %v (total %d), want %s lines %v\n%v", ie.Code, got, ie.Total, code, lines, err)
	}
	for i := range lines {
		if got[i] != lines[i] {
			t.Fatalf("got lines %v, want %v", got, lines)
		}
	}
	return ie
}

const goodTransactions = txnHeader +
	"R-1,oslo-1,till-1,sale,2026-11-01T10:00:00+01:00,12950,NOK,2900000000018,\n" +
	"R-2,oslo-1,till-1,sale,2026-11-01T11:00:00+01:00,4500,nok,,Kari@Example.com\n" +
	"R-3,oslo-1,till-2,sale,2026-11-02T12:00:00Z,9900,NOK,,\n" +
	"R-3,oslo-1,till-2,sale,2026-11-02T13:00:00+01:00,9900,NOK,,\n" // the same sale again, other offset

func TestImportTransactions(t *testing.T) {
	t.Run("a good file loads and a re-import stores nothing new", func(t *testing.T) {
		db, _ := fixture(t)
		res, err := importFile(t, db, "transactions", goodTransactions)
		wantCounts(t, res, err, 4, 3, 1)
		if n := countRows(t, db, `SELECT count(*) FROM transactions WHERE member_email = 'kari@example.com' AND currency = 'NOK'`); n != 1 {
			t.Fatalf("normalised email row: %d, want 1", n)
		}
		res, err = importFile(t, db, "transactions", goodTransactions)
		wantCounts(t, res, err, 4, 0, 4)
		if n := countRows(t, db, `SELECT count(*) FROM transactions`); n != 3 {
			t.Fatalf("%d rows stored, want 3", n)
		}
	})

	t.Run("a file with bad lines loads nothing and names them", func(t *testing.T) {
		db, _ := fixture(t)
		file := txnHeader +
			"R-1,oslo-1,till-1,sale,2026-11-01T10:00:00+01:00,100,NOK,,\n" + // line 2
			"R-2,oslo-1,till-1,sale,2026-11-01T10:00:00+01:00,12.50,NOK,,\n" + // line 3: decimal amount
			"R-3,oslo-1,till-1,sale,2026-11-01T10:00:00+01:00,100,NOK,,\n" +
			"R-4,oslo-1,till-1,sale,2026-11-01T10:00:00+01:00,100,NOK,,\n" +
			"R-5,oslo-1,till-1,sale,2026-11-01T10:00:00+01:00,100,NOK,,\n" +
			"R-6,oslo-1,till-1,sale,01/11/2026,100,SEK,,\n" // line 7: date and currency
		_, err := importFile(t, db, "transactions", file)
		ie := wantBadLines(t, err, models.EINVALID, 3, 7)
		if ie.Lines[0].Fields["amount"] == "" || ie.Lines[1].Fields["occurred_at"] == "" || ie.Lines[1].Fields["currency"] == "" {
			t.Fatalf("fields not named: %v", err)
		}
		if !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "line 7") {
			t.Fatalf("message does not name the lines: %v", err)
		}
		if n := countRows(t, db, `SELECT count(*) FROM transactions`); n != 0 {
			t.Fatalf("%d rows stored, want none", n)
		}
	})

	t.Run("a line with missing fields or a stray quote is a bad line", func(t *testing.T) {
		db, _ := fixture(t)
		file := txnHeader +
			"R-1,oslo-1,till-1,sale,2026-11-01T10:00:00+01:00,100,NOK\n" +
			"R-2,oslo-1,till-1,sale,2026-11-01T10:00:00+01:00,100,NOK,,\n" +
			"R-3,oslo-1,till-1,sale,2026-11-01T10:00:00+01:00,1\"00,NOK,,\n"
		_, err := importFile(t, db, "transactions", file)
		wantBadLines(t, err, models.EINVALID, 2, 4)
	})

	t.Run("a header that is not the format is refused", func(t *testing.T) {
		db, _ := fixture(t)
		_, err := importFile(t, db, "transactions", "id,store,amount\nR-1,oslo-1,100\n")
		wantBadLines(t, err, models.EINVALID, 1)
	})

	t.Run("an id posted by a till with another amount is a conflict", func(t *testing.T) {
		db, reg := fixture(t)
		posted := models.TransactionInput{ID: "R-2", Store: "oslo-1", Register: "till-1", Kind: "sale",
			OccurredAt: "2026-11-01T11:00:00+01:00", Amount: models.NewInt(1), Currency: "NOK",
			Member: &models.MemberRef{Email: "kari@example.com"}}
		if _, _, err := db.RecordTransaction(context.Background(), reg, posted); err != nil {
			t.Fatal(err)
		}
		_, err := importFile(t, db, "transactions", goodTransactions)
		wantBadLines(t, err, models.ECONFLICT, 3)
		if n := countRows(t, db, `SELECT count(*) FROM transactions`); n != 1 {
			t.Fatalf("%d rows stored, want only the posted one", n)
		}
	})

	t.Run("a sale posted by a till with the same content is already present", func(t *testing.T) {
		db, reg := fixture(t)
		posted := models.TransactionInput{ID: "R-2", Store: "oslo-1", Register: "till-1", Kind: "sale",
			OccurredAt: "2026-11-01T10:00:00Z", Amount: models.NewInt(4500), Currency: "NOK",
			Member: &models.MemberRef{Email: "kari@example.com"}}
		if _, _, err := db.RecordTransaction(context.Background(), reg, posted); err != nil {
			t.Fatal(err)
		}
		res, err := importFile(t, db, "transactions", goodTransactions)
		wantCounts(t, res, err, 4, 2, 2)
		// And the other way round: the till's replay of an imported sale is a replay.
		imported := models.TransactionInput{ID: "R-1", Store: "oslo-1", Register: "till-1", Kind: "sale",
			OccurredAt: "2026-11-01T09:00:00Z", Amount: models.NewInt(12950), Currency: "NOK",
			Member: &models.MemberRef{Card: "2900000000018"}}
		if _, outcome, err := db.RecordTransaction(context.Background(), reg, imported); err != nil || outcome != models.Replayed {
			t.Fatalf("posting an imported sale: outcome %v, err %v; want a replay", outcome, err)
		}
	})

	t.Run("the same id twice in a file with other content is a conflict", func(t *testing.T) {
		db, _ := fixture(t)
		file := txnHeader +
			"R-1,oslo-1,till-1,sale,2026-11-01T10:00:00+01:00,100,NOK,,\n" +
			"R-1,oslo-1,till-1,sale,2026-11-01T10:00:00+01:00,200,NOK,,\n"
		_, err := importFile(t, db, "transactions", file)
		ie := wantBadLines(t, err, models.ECONFLICT, 3)
		if !strings.Contains(ie.Lines[0].Fields["id"], "line 2") {
			t.Fatalf("conflict does not name the first line: %v", err)
		}
	})

	t.Run("a refund must name a sale of the store", func(t *testing.T) {
		db, _ := fixture(t)
		file := "id,store,register,kind,occurred_at,amount,currency,member_card,member_email,refunds\n" +
			"R-1,oslo-1,till-1,sale,2026-11-01T10:00:00+01:00,100,NOK,2900000000018,,\n" +
			"R-2,oslo-1,till-1,refund,2026-11-02T10:00:00+01:00,100,NOK,,,R-1\n" +
			"R-3,oslo-1,till-1,refund,2026-11-02T10:00:00+01:00,100,NOK,,,R-9\n"
		_, err := importFile(t, db, "transactions", file)
		wantBadLines(t, err, models.EINVALID, 4)
		res, err := importFile(t, db, "transactions", strings.TrimSuffix(file, "R-3,oslo-1,till-1,refund,2026-11-02T10:00:00+01:00,100,NOK,,,R-9\n"))
		wantCounts(t, res, err, 2, 2, 0)
	})
}

const memberHeader = "card,email,name,phone,home_store,joined_at,marketing_consent\n"

func TestImportMembers(t *testing.T) {
	t.Run("imported members are active, link earlier sales and record import consent", func(t *testing.T) {
		db, _ := fixture(t)
		res, err := importFile(t, db, "transactions", goodTransactions)
		wantCounts(t, res, err, 4, 3, 1)
		members := memberHeader +
			"2900000000018,ola@example.com,Ola Nordmann,+47 912 34 567,oslo-1,2024-03-01,true\n" +
			"2900000000025,KARI@example.com,Kari Nordmann,,oslo-1,2025-01-10T09:00:00+01:00,false\n" +
			"2900000000032,,Per,,,,\n"
		res, err = importFile(t, db, "members", members)
		wantCounts(t, res, err, 3, 3, 0)
		if res.Linked != 2 {
			t.Fatalf("linked %d earlier sales, want 2 (one by card, one by email)", res.Linked)
		}
		if n := countRows(t, db, `SELECT count(*) FROM members WHERE status = 'active' AND source = 'import'`); n != 3 {
			t.Fatalf("%d active imported members, want 3", n)
		}
		if n := countRows(t, db, `SELECT count(*) FROM members m JOIN consents c ON c.member_id = m.id
			WHERE m.card = '2900000000018' AND m.marketing_consent = 'confirmed' AND c.granted AND c.source = 'import'`); n != 1 {
			t.Fatalf("consent of the consenting member: %d rows, want 1", n)
		}
		if n := countRows(t, db, `SELECT count(*) FROM members WHERE marketing_consent = 'confirmed'`); n != 1 {
			t.Fatalf("%d members with confirmed consent, want 1", n)
		}
		res, err = importFile(t, db, "members", members)
		wantCounts(t, res, err, 3, 0, 3)
	})

	t.Run("bad and conflicting member lines load nothing", func(t *testing.T) {
		tests := []struct {
			name  string
			file  string
			code  string
			lines []int
		}{
			{"a wrong check digit, a bad store and consent without email",
				memberHeader + "2900000000019,a@example.com,A,,oslo-1,,\n" + "2900000000025,,B,,nowhere,,\n" + "2900000000032,,C,,,,true\n",
				models.EINVALID, []int{2, 3, 4}},
			{"one card twice with other names",
				memberHeader + "2900000000018,,A,,,,\n" + "2900000000018,,B,,,,\n", models.ECONFLICT, []int{3}},
			{"one email on two cards",
				memberHeader + "2900000000018,a@example.com,A,,,,\n" + "2900000000025,A@example.com,B,,,,\n", models.ECONFLICT, []int{3}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				db, _ := fixture(t)
				_, err := importFile(t, db, "members", tc.file)
				wantBadLines(t, err, tc.code, tc.lines...)
				if n := countRows(t, db, `SELECT count(*) FROM members`); n != 0 {
					t.Fatalf("%d members stored, want none", n)
				}
			})
		}
	})

	t.Run("a stored card with other data is a conflict", func(t *testing.T) {
		db, _ := fixture(t)
		res, err := importFile(t, db, "members", memberHeader+"2900000000018,a@example.com,A,,,,\n")
		wantCounts(t, res, err, 1, 1, 0)
		_, err = importFile(t, db, "members", memberHeader+"2900000000025,,B,,,,\n"+"2900000000018,b@example.com,A,,,,\n")
		wantBadLines(t, err, models.ECONFLICT, 3)
	})
}

// TestImportPathsAgree runs the same files through the direct path (a file, which can be read
// again) and the staging path (a pipe, which cannot).
func TestImportPathsAgree(t *testing.T) {
	readers := []struct {
		name string
		wrap func(string) io.Reader
	}{
		{"from a file", func(s string) io.Reader { return strings.NewReader(s) }},
		{"from a pipe", func(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) }},
	}
	const members = memberHeader +
		"2900000000018,ola@example.com,Ola Nordmann,,oslo-1,2024-03-01,true\n" +
		"2900000000025,kari@example.com,Kari Nordmann,,oslo-1,2024-03-01,false\n"
	const sales = "id,store,register,kind,occurred_at,amount,currency,member_card,member_email,refunds\n" +
		"R-1,oslo-1,till-1,sale,2026-11-01T10:00:00+01:00,500,NOK,2900000000018,,\n" +
		"R-2,oslo-1,till-1,sale,2026-11-01T11:00:00+01:00,700,NOK,,KARI@example.com,\n" +
		"R-3,oslo-1,till-1,refund,2026-11-02T10:00:00+01:00,500,NOK,,,R-1\n" +
		"R-4,oslo-1,till-1,sale,2026-11-02T11:00:00+01:00,900,NOK,2900000000032,,\n"
	for _, r := range readers {
		t.Run(r.name+", members are resolved and refunds inherit their sale's member", func(t *testing.T) {
			db, _ := fixture(t)
			ctx := context.Background()
			if _, err := db.ImportMembersCSV(ctx, r.wrap(members)); err != nil {
				t.Fatal(err)
			}
			res, err := db.ImportTransactionsCSV(ctx, r.wrap(sales))
			wantCounts(t, res, err, 4, 4, 0)
			for id, card := range map[string]string{"R-1": "2900000000018", "R-2": "2900000000025", "R-3": "2900000000018"} {
				if n := countRows(t, db, `SELECT count(*) FROM transactions t JOIN members m ON m.id = t.member_id WHERE t.txn_id = $1 AND m.card = $2`, id, card); n != 1 {
					t.Errorf("%s is not linked to member %s", id, card)
				}
			}
			if n := countRows(t, db, `SELECT count(*) FROM transactions WHERE txn_id = 'R-4' AND member_id IS NULL`); n != 1 {
				t.Errorf("the sale on an unregistered card is linked")
			}
			res, err = db.ImportTransactionsCSV(ctx, r.wrap(sales))
			wantCounts(t, res, err, 4, 0, 4)
		})
		t.Run(r.name+", a refund of an unknown sale is a bad line", func(t *testing.T) {
			db, _ := fixture(t)
			bad := sales + "R-5,oslo-1,till-1,refund,2026-11-02T10:00:00+01:00,100,NOK,,,R-9\n"
			_, err := db.ImportTransactionsCSV(context.Background(), r.wrap(bad))
			wantBadLines(t, err, models.EINVALID, 6)
		})
	}
}

func TestImportMembersWithBirthdays(t *testing.T) {
	header := strings.TrimSuffix(memberHeader, "\n") + ",birthday\n"
	good := header +
		"2900000000018,ola@example.com,Ola Nordmann,,oslo-1,2024-03-01,true,--02-29\n" +
		"2900000000025,,Kari Nordmann,,oslo-1,,,1990-05-17\n" +
		"2900000000032,,Per,,,,,\n"

	t.Run("both forms are stored and a file without the column still loads", func(t *testing.T) {
		db, _ := fixture(t)
		res, err := importFile(t, db, "members", good)
		wantCounts(t, res, err, 3, 3, 0)
		for card, want := range map[string]string{"2900000000018": "0004-02-29", "2900000000025": "1990-05-17", "2900000000032": ""} {
			var got string
			if err := db.Pool.QueryRow(context.Background(), `SELECT coalesce(birth_date::text, '') FROM members WHERE card = $1`, card).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("card %s: birth_date %q, want %q", card, got, want)
			}
		}
		res, err = importFile(t, db, "members", good)
		wantCounts(t, res, err, 3, 0, 3)
		// The same members from a file without birthdays are present: an empty birthday compares
		// with nothing, as an empty joined_at does.
		res, err = importFile(t, db, "members", memberHeader+"2900000000025,,Kari Nordmann,,oslo-1,,\n")
		wantCounts(t, res, err, 1, 0, 1)
		_, err = importFile(t, db, "members", header+"2900000000025,,Kari Nordmann,,oslo-1,,,1990-05-18\n")
		if ie := wantBadLines(t, err, models.ECONFLICT, 2); !strings.Contains(ie.Lines[0].Fields["card"], "birthday") {
			t.Errorf("conflict %v, want it to name the birthday", ie.Lines[0].Fields)
		}
	})

	t.Run("a bad birthday names its line and column and loads nothing", func(t *testing.T) {
		db, _ := fixture(t)
		_, err := importFile(t, db, "members", good+
			"2900000000049,,Liv,,,,,--02-30\n"+
			"2900000000056,,Ola,,,,,1899-12-31\n"+
			"2900000000063,,Ida,,,,,17.05.1990\n")
		ie := wantBadLines(t, err, models.EINVALID, 5, 6, 7)
		for _, l := range ie.Lines {
			if l.Fields["birthday"] == "" || len(l.Fields) != 1 {
				t.Errorf("line %d: %v, want the birthday column named", l.Line, l.Fields)
			}
		}
		if !strings.Contains(err.Error(), "line 5: birthday: is not a date") {
			t.Errorf("message %q", err)
		}
		if n := countRows(t, db, `SELECT count(*) FROM members`); n != 0 {
			t.Fatalf("%d members stored, want none", n)
		}
	})
}
