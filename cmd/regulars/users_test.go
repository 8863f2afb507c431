package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// runCmdStdin is runCmd with stdin.
func runCmdStdin(t *testing.T, dbURL, stdin string, args ...string) (string, error) {
	t.Helper()
	dataDir := t.TempDir()
	getenv := func(k string) string {
		switch k {
		case "REGULARS_DATABASE_URL":
			return dbURL
		case "REGULARS_DATA_DIR":
			return dataDir
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, getenv, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), err
}

func TestUserCreateCommand(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.URL(t)
	for _, tc := range []struct {
		name, stdin string
		args        []string
		wantOut     string
		wantErr     string
	}{
		{"an admin is created with the password from stdin", "a long enough password\n",
			[]string{"user", "create", "--email", "Anna@Example.com", "--role", "admin"}, "created user Anna@Example.com (admin)\n", ""},
		{"a marketer is created from a password without a newline", "another good password",
			[]string{"user", "create", "--email", "mark@example.com", "--role", "marketer"}, "created user mark@example.com (marketer)\n", ""},
		{"the same email in another case is refused", "a long enough password\n",
			[]string{"user", "create", "--email", "anna@example.com", "--role", "marketer"}, "", "email: is taken"},
		{"a short password is refused", "short\n",
			[]string{"user", "create", "--email", "short@example.com", "--role", "admin"}, "", "at least 10 characters"},
		{"an empty stdin is no password", "",
			[]string{"user", "create", "--email", "empty@example.com", "--role", "admin"}, "", "no password"},
		{"an unknown role is refused", "a long enough password\n",
			[]string{"user", "create", "--email", "x@example.com", "--role", "register"}, "", "admin or marketer"},
		{"the email is required", "a long enough password\n",
			[]string{"user", "create", "--role", "admin"}, "", "--email and --role are required"},
		{"user without create shows the usage", "", []string{"user"}, "", "usage: regulars user create"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCmdStdin(t, dbURL, tc.stdin, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || out != tc.wantOut {
				t.Fatalf("got %q, %v; want %q", out, err, tc.wantOut)
			}
		})
	}

	t.Run("the created user logs in with that password", func(t *testing.T) {
		db, err := models.Open(context.Background(), dbURL, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		u, err := db.AuthenticateUser(context.Background(), "anna@example.com", "a long enough password")
		if err != nil || u.Role != models.RoleAdmin {
			t.Fatalf("login: %+v, %v", u, err)
		}
	})
}

func TestDemoConsoleAdmin(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	var out bytes.Buffer
	env := &environment{cfg: config{BaseURL: "http://localhost:8080"}, stdout: &out}
	if err := env.demoConsoleAdmin(ctx, db); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`email:    (\S+)\n  password: (\S+)\n`).FindStringSubmatch(out.String())
	if m == nil || !strings.Contains(out.String(), "http://localhost:8080/console/") {
		t.Fatalf("demo output:\n%s", out.String())
	}
	if _, err := db.AuthenticateUser(ctx, m[1], m[2]); err != nil {
		t.Fatalf("the printed login does not work: %v", err)
	}
	out.Reset()
	if err := env.demoConsoleAdmin(ctx, db); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "its password was shown when it was created") {
		t.Fatalf("second demo run:\n%s", out.String())
	}
	if _, err := db.AuthenticateUser(ctx, m[1], "wrong"); !errors.Is(err, models.ErrWrongLogin) {
		t.Fatalf("wrong password: %v", err)
	}
}
