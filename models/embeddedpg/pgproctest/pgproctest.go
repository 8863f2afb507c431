// Package pgproctest helps tests check which postgres processes of an embedded cluster are
// alive, through /proc (Linux).
package pgproctest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SearchableTempDir returns a temporary directory the cluster's user can reach: when the tests
// run as root the cluster runs as postgres, which must be able to enter every directory above
// its data directory.
func SearchableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ClusterProcesses lists the live postgres processes of the cluster under dir: postmasters
// whose command line names dir, and their descendants (backends retitle themselves, so only
// their parentage ties them to dir).
func ClusterProcesses(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	parent := map[int]int{}
	roots := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !IsLivePostgres(pid) {
			continue
		}
		parent[pid] = parentOf(pid)
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), dir) {
			roots[pid] = true
		}
	}
	var out []int
	for pid := range parent {
		for p := pid; p > 1; p = parent[p] {
			if roots[p] {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// IsLivePostgres reports whether pid is a postgres process that has not exited (a zombie
// waiting for its parent to reap it counts as exited).
func IsLivePostgres(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || end+3 >= len(s) {
		return false
	}
	return strings.HasPrefix(s[open+1:end], "postgres") && s[end+2] != 'Z'
}

func parentOf(pid int) int {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// WaitNoPostgres waits up to limit for every postgres process of the cluster under dir to be
// gone, including the ones in pids seen earlier, and fails the test if some remain.
func WaitNoPostgres(t *testing.T, dir string, pids []int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var left []int
		for _, pid := range pids {
			if IsLivePostgres(pid) {
				left = append(left, pid)
			}
		}
		left = append(left, ClusterProcesses(t, dir)...)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres processes of %s still running after %v: %v", dir, limit, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
