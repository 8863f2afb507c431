package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// runCmd runs the program in-process against dbURL and returns stdout.
func runCmd(t *testing.T, dbURL string, args ...string) (string, error) {
	t.Helper()
	getenv := func(k string) string {
		switch k {
		case "REGULARS_DATABASE_URL":
			return dbURL
		case "REGULARS_DATA_DIR":
			return t.TempDir()
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, getenv, strings.NewReader(""), &stdout, &stderr)
	return stdout.String(), err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDemoAndImportCommands(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.URL(t)
	out, err := runCmd(t, dbURL, "demo")
	if err != nil || !strings.Contains(out, "Demo data loaded") {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Segment metrics computed as of 7 dates") {
		t.Errorf("demo did not compute the metrics snapshots:\n%s", out)
	}
	good := writeFile(t, "t.csv", "id,store,register,kind,occurred_at,amount,currency,member_card,member_email\n"+
		"X-1,oslo-1,till-1,sale,2026-01-01T10:00:00+01:00,100,NOK,,\n"+
		"X-2,oslo-1,till-1,sale,2026-01-01T11:00:00+01:00,200,NOK,,\n")
	bad := writeFile(t, "bad.csv", "id,store,register,kind,occurred_at,amount,currency,member_card,member_email\n"+
		"X-3,oslo-1,till-1,sale,2026-01-01T10:00:00+01:00,100,NOK,,\n"+
		"X-4,oslo-1,till-1,sale,2026-01-01T10:00:00+01:00,1.5,NOK,,\n")
	members := writeFile(t, "m.csv", "card,email,name,phone,home_store,joined_at,marketing_consent\n"+
		"2900000000018,new.member@example.com,New Member,,oslo-1,2025-05-01,true\n")
	runSteps(t, dbURL, []cmdStep{
		{"a second demo is refused", []string{"demo"}, "", "already has stores"},
		{"a new file is imported", []string{"import", "transactions", good}, "imported 2 rows (2 new, 0 already present)", ""},
		{"the same file again adds nothing", []string{"import", "transactions", good}, "imported 2 rows (0 new, 2 already present)", ""},
		{"a bad file names its bad line", []string{"import", "transactions", bad}, "", "line 3: amount"},
		{"members are imported", []string{"import", "members", members}, "imported 1 row (1 new, 0 already present)", ""},
		{"an unknown import kind is refused", []string{"import", "stores", "x.csv"}, "", "usage"},
	})
}

// cmdStep is one run of the program and what it should print or fail with.
type cmdStep struct {
	name    string
	args    []string
	wantOut string // in stdout, when wantErr is empty
	wantErr string // in the error
}

// runSteps runs the steps in order against dbURL, each as a subtest.
func runSteps(t *testing.T, dbURL string, steps []cmdStep) {
	t.Helper()
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			out, err := runCmd(t, dbURL, s.args...)
			if s.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), s.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, s.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(out, s.wantOut) {
				t.Fatalf("got %v\n%s\nwant output containing %q", err, out, s.wantOut)
			}
		})
	}
}

func TestServeDemo(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.URL(t)
	ctx := context.Background()
	db, err := models.Open(ctx, dbURL, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stdout bytes.Buffer
	env := &environment{cfg: config{BaseURL: "http://localhost:8080"}, stdout: &stdout, stderr: &stdout}

	t.Run("an empty database gets demo data and tokens that work", func(t *testing.T) {
		if err := env.fillDemo(ctx, db, false); err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`register \(oslo-1\): (rgl_\S+)`).FindStringSubmatch(stdout.String())
		if m == nil || !strings.Contains(stdout.String(), "curl -s -X POST http://localhost:8080/api/v1/transactions") {
			t.Fatalf("no register token or curl example in:\n%s", stdout.String())
		}
		p, err := db.Authenticate(ctx, m[1])
		if err != nil || p.Role != models.RoleRegister || p.Store.Code != "oslo-1" {
			t.Fatalf("register token: %+v, %v", p, err)
		}
	})

	t.Run("a database with stores is left alone with a note", func(t *testing.T) {
		stdout.Reset()
		if err := env.fillDemo(ctx, db, false); err != nil {
			t.Fatal(err)
		}
		if out := stdout.String(); strings.Count(out, "\n") != 1 || !strings.Contains(out, "regulars apikey create") {
			t.Fatalf("got %q, want a one-line note", out)
		}
	})
}
