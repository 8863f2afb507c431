package embeddedpg

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models/embeddedpg/pgproctest"

	"github.com/jackc/pgx/v5"
)

// TestClusterLifecycle walks one data directory through its life: the first Start owns the
// cluster, a second Start joins it, only the owner's Stop stops it, and a later Start brings the
// same data back.
func TestClusterLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(pgproctest.SearchableTempDir(t), "pg")

	owner, err := Start(ctx, Options{Dir: dir, NoSync: true})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = owner.Stop() })

	t.Run("the first start owns the cluster and accepts connections", func(t *testing.T) {
		if !owner.Owned() || owner.Port() == 0 {
			t.Fatalf("owned=%v port=%d, want an owned cluster on a port", owner.Owned(), owner.Port())
		}
		if err := owner.EnsureDatabase(ctx, "kept"); err != nil {
			t.Fatalf("ensure database: %v", err)
		}
		if err := owner.EnsureDatabase(ctx, "kept"); err != nil {
			t.Fatalf("ensure database a second time: %v", err)
		}
		queryOne(t, ctx, owner.URL("kept"))
	})

	t.Run("a second start on the same dir joins the running cluster", func(t *testing.T) {
		joiner, err := Start(ctx, Options{Dir: dir, NoSync: true})
		if err != nil {
			t.Fatalf("second start: %v", err)
		}
		if joiner.Owned() {
			t.Fatal("the second start claims to own the cluster")
		}
		if joiner.Port() != owner.Port() {
			t.Fatalf("second start on port %d, the cluster is on %d", joiner.Port(), owner.Port())
		}
		if err := joiner.Stop(); err != nil {
			t.Fatalf("stop of the joiner: %v", err)
		}
		queryOne(t, ctx, owner.URL("kept"))
	})

	t.Run("the owner's stop leaves no postgres process behind", func(t *testing.T) {
		pids := pgproctest.ClusterProcesses(t, dir)
		if len(pids) == 0 {
			t.Fatalf("found no postgres process for %s while it runs", dir)
		}
		if err := owner.Stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		for _, pid := range pids {
			if pgproctest.IsLivePostgres(pid) {
				t.Errorf("postgres pid %d is still running after stop", pid)
			}
		}
		if left := pgproctest.ClusterProcesses(t, dir); len(left) > 0 {
			t.Errorf("postgres processes for %s after stop: %v", dir, left)
		}
	})

	t.Run("a later start brings the same data back", func(t *testing.T) {
		again, err := Start(ctx, Options{Dir: dir, NoSync: true})
		if err != nil {
			t.Fatalf("restart: %v", err)
		}
		defer again.Stop()
		if !again.Owned() {
			t.Fatal("the restart does not own the cluster")
		}
		queryOne(t, ctx, again.URL("kept"))
	})
}

func TestFindBinaries(t *testing.T) {
	t.Run("finds the distribution's directory with PATH and pg_config hidden", func(t *testing.T) {
		installed, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		if len(installed) == 0 {
			t.Skip("no /usr/lib/postgresql/*/bin on this machine")
		}
		t.Setenv("PATH", t.TempDir()) // no postgres, no pg_config
		dir, err := FindBinaries()
		if err != nil {
			t.Fatalf("FindBinaries: %v", err)
		}
		if ok, _ := filepath.Match("/usr/lib/postgresql/*/bin", dir); !ok {
			t.Fatalf("found %s, want a /usr/lib/postgresql/*/bin directory", dir)
		}
	})

	t.Run("prefers the newest of several versions", func(t *testing.T) {
		root := t.TempDir()
		for _, version := range []string{"9.6", "16", "15"} {
			fakeBinaries(t, filepath.Join(root, "pgsql-"+version, "bin"))
		}
		fakeBinaries(t, filepath.Join(root, "pgsql-17", "lib")) // not a bin dir: not matched
		if err := os.MkdirAll(filepath.Join(root, "pgsql-18", "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", t.TempDir())
		dir, err := findBinaries([]string{filepath.Join(root, "pgsql-*", "bin")})
		if err != nil {
			t.Fatalf("findBinaries: %v", err)
		}
		if want := filepath.Join(root, "pgsql-16", "bin"); dir != want {
			t.Fatalf("found %s, want %s (the newest one holding initdb and postgres)", dir, want)
		}
	})

	t.Run("fails with one line saying what to do when nothing is installed", func(t *testing.T) {
		empty := t.TempDir()
		t.Setenv("PATH", empty)
		_, err := findBinaries([]string{filepath.Join(empty, "*", "bin")})
		if !errors.Is(err, ErrNoBinaries) {
			t.Fatalf("err = %v, want ErrNoBinaries", err)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("message spans lines: %q", msg)
		}
		for _, want := range []string{"apt-get install postgresql", "REGULARS_DATABASE_URL"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not mention %q", msg, want)
			}
		}
	})
}

func TestVersionOf(t *testing.T) {
	for _, tc := range []struct {
		path string
		want float64
	}{
		{"/usr/lib/postgresql/15/bin", 15},
		{"/usr/pgsql-16/bin", 16},
		{"/usr/local/pgsql/bin", 0},
		{"/opt/homebrew/opt/postgresql@14/bin", 14},
		{"/srv/2024/pgsql-9.6/bin", 9.6},
	} {
		t.Run(tc.path+" is version "+strconv.FormatFloat(tc.want, 'g', -1, 64), func(t *testing.T) {
			if got := versionOf(tc.path); got != tc.want {
				t.Fatalf("versionOf(%q) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
}

func queryOne(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
}

func fakeBinaries(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
