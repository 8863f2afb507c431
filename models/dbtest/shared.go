package dbtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	osexec "os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models/embeddedpg"
)

// One cluster for a whole `go test` run.
//
// `go test ./...` runs one test binary per package, several at a time, all children of the go
// command. Booting a cluster in each costs seconds of CPU apiece, so the first binary that needs
// a database starts a cluster server: the binary itself run again in serve mode (see Main), in
// its own session so that a Ctrl-C reaches only the go command. The server starts the cluster,
// writes its URL into a folder named after the go command's pid, and waits for the go command to
// exit; then it stops the cluster (a fast shutdown) and removes the folder. The other binaries
// of the run find the URL there. Each binary still makes its own template and databases, so
// tests stay isolated.
//
// Whatever dies, nothing stays: the postmaster has a parent-death signal on the server
// (embeddedpg), and a folder whose server is gone is removed by the next run. Anything
// unexpected on the way falls back to a private cluster for the binary, as before.

const (
	serveDirEnv = "REGULARS_DBTEST_SERVE_DIR"   // serve mode: the run's folder
	servePIDEnv = "REGULARS_DBTEST_SERVE_UNTIL" // serve mode: the go command's pid
	sharedGlob  = "regulars-test-pg-run-*"      // the runs' folders in the temp dir
)

// errNotShared says this binary was not started by the go command, so there is no run to share
// a cluster with: a binary run by hand, under a debugger or with -exec.
var errNotShared = errors.New("not run by the go command")

// sharedCluster returns the admin URL of the cluster of this `go test` run, starting it if this
// is the first binary of the run to ask.
func sharedCluster(ctx context.Context) (string, error) {
	goPID := os.Getppid()
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", goPID)); err != nil || strings.TrimSpace(string(comm)) != "go" {
		return "", errNotShared
	}
	removeStaleRuns()
	dir := filepath.Join(os.TempDir(), strings.Replace(sharedGlob, "*", strconv.Itoa(goPID), 1))
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	// The folder must be ours (the temp dir is shared with other users), and searchable by the
	// postgres user when we are root.
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || !fi.IsDir() || int(st.Uid) != os.Geteuid() {
		return "", fmt.Errorf("%s is not a folder of ours", dir)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	// One binary at a time looks for the server and, finding none, starts it.
	unlock, err := embeddedpg.LockFile(ctx, filepath.Join(dir, "lock"), false)
	if err != nil {
		return "", err
	}
	defer unlock()
	if serverAlive(dir) {
		b, err := os.ReadFile(filepath.Join(dir, "url"))
		if err != nil {
			return "", err
		}
		url := strings.TrimSpace(string(b))
		return url, pingURL(ctx, url)
	}
	return startServer(ctx, dir, goPID)
}

// startServer runs this test binary in serve mode and returns the URL it prints once the
// cluster accepts connections.
func startServer(ctx context.Context, dir string, goPID int) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return "", err
	}
	defer logFile.Close()
	cmd := osexec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), serveDirEnv+"="+dir, servePIDEnv+"="+strconv.Itoa(goPID))
	cmd.Dir = "/"
	// Not the go command's output: it waits for every holder of its pipes before it finishes.
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
		_ = cmd.Wait() // reaps the server if it ends while we run; it normally outlives us
	}()
	select {
	case url := <-line:
		if url == "" {
			b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return "", fmt.Errorf("shared test cluster did not start:\n%s", b)
		}
		return url, nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return "", ctx.Err()
	}
}

// serve is serve mode: start the run's cluster in dir, print its URL, and stop it and remove
// dir once the go command with pid goPID has exited. It returns the exit code.
func serve(dir string, goPID int) int {
	if goPID <= 1 {
		fmt.Fprintf(os.Stderr, "dbtest serve: no go command to wait for (%s=%q)\n", servePIDEnv, os.Getenv(servePIDEnv))
		return 2
	}
	alive, err := embeddedpg.LockFile(context.Background(), filepath.Join(dir, "server.lock"), false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer alive()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cluster, err := embeddedpg.Start(ctx, embeddedpg.Options{
		Dir: filepath.Join(dir, "pg"), NoSync: true,
		MaxConnections: 500, // several test binaries at a time, each with parallel tests
	})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		return 1
	}
	url := cluster.URL("postgres")
	if err := writeFileAtomic(filepath.Join(dir, "url"), url+"\n"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = cluster.Stop()
		_ = os.RemoveAll(dir)
		return 1
	}
	fmt.Println(url)
	_ = os.Stdout.Close() // the binary that started us stops reading here
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
wait:
	for syscall.Kill(goPID, 0) != syscall.ESRCH {
		select {
		case <-signals:
			break wait
		case <-ticker.C:
		}
	}
	_ = cluster.Stop()
	_ = os.RemoveAll(dir)
	return 0
}

// serverAlive reports whether dir's server runs: it holds server.lock as long as it lives.
func serverAlive(dir string) bool {
	path := filepath.Join(dir, "server.lock")
	if _, err := os.Stat(path); err != nil {
		return false
	}
	l := flock.New(path)
	got, err := l.TryRLock()
	if err != nil {
		return false
	}
	if got {
		_ = l.Unlock()
	}
	return !got
}

// removeStaleRuns removes the folders of runs whose server died without cleaning up (killed with
// SIGKILL, or the machine stopped): its postmaster went with it, the folder stayed.
func removeStaleRuns() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedGlob))
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), strings.TrimSuffix(sharedGlob, "*")))
		if err != nil || pid == os.Getppid() || syscall.Kill(pid, 0) != syscall.ESRCH || serverAlive(dir) {
			continue
		}
		if fi, err := os.Lstat(dir); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == os.Geteuid() {
				_ = os.RemoveAll(dir)
			}
		}
	}
}

func writeFileAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// pingURL checks that the server at url accepts connections.
func pingURL(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}
