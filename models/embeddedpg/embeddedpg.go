// Package embeddedpg runs a private PostgreSQL cluster from the server binaries installed on the
// machine, so that Regulars works out of the box without a database server set up by hand.
//
// The cluster lives in one directory. The first process to need it initialises and starts it and
// stops it again on exit; any other process that finds it running uses it as it is. The
// postmaster is a child of the starting process with a parent-death signal, so even a process
// killed with SIGKILL leaves no postgres behind.
package embeddedpg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"github.com/jackc/pgx/v5"
)

// Superuser is the bootstrap role initdb creates; the cluster trusts it on loopback only.
const Superuser = "regulars"

// ErrNoBinaries is returned when no PostgreSQL server binaries can be found.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries (initdb, postgres) found: " +
	"install them (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server; " +
	"macOS: brew install postgresql@16) or set REGULARS_DATABASE_URL to an existing database")

// Options configure a cluster.
type Options struct {
	// Dir is the cluster's data directory; it is created when missing.
	Dir string
	// NoSync turns off fsync and synchronous commit: for throwaway test clusters only.
	NoSync bool
	// MaxConnections is the server's max_connections. Default 200.
	MaxConnections int
	// RunAs is the system user that owns and runs the cluster when the process is root
	// (initdb refuses root). Default "postgres".
	RunAs string
	// Logger receives start and stop messages; nil discards them.
	Logger *slog.Logger
}

// Cluster is a running PostgreSQL cluster, started by this process or found running.
type Cluster struct {
	dir    string
	port   int
	owned  bool
	pid    int
	exited chan struct{}
	logger *slog.Logger
}

// Port is the loopback TCP port the cluster listens on.
func (c *Cluster) Port() int { return c.port }

// Owned reports whether this process started the cluster (and so stops it).
func (c *Cluster) Owned() bool { return c.owned }

// URL returns a connection URL for database db as the cluster's superuser.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, c.port, db)
}

// Start finds a running cluster in opts.Dir or initialises and starts one.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RunAs == "" {
		opts.RunAs = "postgres"
	}
	if opts.MaxConnections == 0 {
		opts.MaxConnections = 200
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	// One process at a time decides whether to start the cluster, so that two commands started
	// together do not both run initdb or postgres on the same directory.
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: lock %s: %w", dir, err)
	}
	defer unlock()

	if c, err := findRunning(ctx, dir, opts.Logger); err != nil || c != nil {
		return c, err
	}
	bindir, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := credentialFor(opts.RunAs)
	if err != nil {
		return nil, err
	}
	if err := initCluster(ctx, bindir, dir, cred, opts); err != nil {
		return nil, err
	}
	return startPostmaster(ctx, bindir, dir, cred, opts)
}

// Stop shuts the cluster down if this process started it: a fast shutdown (open sessions are
// rolled back, committed data is already durable), escalating if it hangs.
func (c *Cluster) Stop() error {
	if c == nil || !c.owned {
		return nil
	}
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, 30 * time.Second}, {syscall.SIGQUIT, 10 * time.Second}, {syscall.SIGKILL, 5 * time.Second}} {
		_ = syscall.Kill(c.pid, step.sig)
		select {
		case <-c.exited:
			c.logger.Info("embedded postgres stopped", "dir", c.dir)
			return nil
		case <-time.After(step.wait):
		}
	}
	return fmt.Errorf("embedded postgres (pid %d) did not stop", c.pid)
}

// binaryGlobs are the distributions' versioned PostgreSQL directories, searched after PATH and
// pg_config.
var binaryGlobs = []string{
	"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql*/bin",
	"/opt/homebrew/opt/postgresql@*/bin", "/usr/local/opt/postgresql@*/bin",
}

// FindBinaries returns the directory holding initdb and postgres: from PATH, then
// `pg_config --bindir`, then the distributions' versioned directories, newest first.
func FindBinaries() (string, error) { return findBinaries(binaryGlobs) }

// findBinaries is FindBinaries with the versioned directories given, so that tests can search
// a machine with no PostgreSQL on it.
func findBinaries(globs []string) (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if p, err := exec.LookPath("postgres"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	}
	var candidates []string
	for _, pattern := range globs {
		m, _ := filepath.Glob(pattern)
		candidates = append(candidates, m...)
	}
	sort.SliceStable(candidates, func(i, j int) bool { return versionOf(candidates[i]) > versionOf(candidates[j]) })
	for _, dir := range candidates {
		if has(dir) {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

// versionOf reads the major version out of a path such as /usr/lib/postgresql/15/bin: the last
// number in it, so that a number higher up (/srv/2024/pgsql-16/bin) does not count.
func versionOf(path string) float64 {
	version := 0.0
	for _, part := range strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '@' || r == '-' }) {
		part = strings.TrimPrefix(part, "pgsql")
		if v, err := strconv.ParseFloat(part, 64); err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
			version = v
		}
	}
	return version
}

// credentialFor returns the user to run the cluster as when this process is root, else nil.
func credentialFor(name string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: running as root needs the system user %q to run the cluster (initdb refuses root): %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func initCluster(ctx context.Context, bindir, dir string, cred *syscall.Credential, opts Options) error {
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("embedded postgres: %w", err)
		}
	}
	opts.Logger.Info("creating embedded postgres cluster", "dir", dir, "bin", bindir)
	args := []string{"-D", dir, "-U", Superuser, "-A", "trust", "-E", "UTF8", "--locale=C"}
	if opts.NoSync {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bindir, "initdb"), args...)
	cmd.Dir = "/" // the postgres user may not be allowed into our working directory
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		hint := ""
		if cred != nil {
			hint = fmt.Sprintf(" (the cluster runs as uid %d: every directory above %s must be searchable by it)", cred.Uid, dir)
		}
		return fmt.Errorf("embedded postgres: initdb failed%s: %w\n%s", hint, err, out)
	}
	return nil
}

func startPostmaster(ctx context.Context, bindir, dir string, cred *syscall.Credential, opts Options) (*Cluster, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	defer logFile.Close()
	args := []string{"-D", dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "max_connections=" + strconv.Itoa(opts.MaxConnections)}
	if opts.NoSync {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(bindir, "postgres"), args...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		// Own process group: a Ctrl-C on the terminal reaches us, and we stop postgres after the
		// HTTP server has drained, not before.
		Setpgid: true,
		// If we die, even by SIGKILL, postgres gets a fast shutdown instead of living on.
		Pdeathsig: syscall.SIGINT,
	}
	c := &Cluster{dir: dir, port: port, owned: true, exited: make(chan struct{}), logger: opts.Logger}
	started := make(chan error, 1)
	// Pdeathsig fires when the OS thread that forked the child exits, so that thread is kept
	// locked, and alive, until postgres has exited.
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			runtime.UnlockOSThread()
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(c.exited)
		runtime.UnlockOSThread()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("embedded postgres: start: %w", err)
	}
	c.pid = cmd.Process.Pid
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := ping(ctx, c.URL("postgres")); err == nil {
			break
		}
		select {
		case <-c.exited:
			return nil, fmt.Errorf("embedded postgres exited at start; last lines of %s:\n%s", logPath, tail(logPath, 10))
		case <-ctx.Done():
			_ = c.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = c.Stop()
			return nil, fmt.Errorf("embedded postgres did not accept connections within 60s; see %s", logPath)
		}
	}
	opts.Logger.Info("embedded postgres started", "dir", dir, "port", port, "pid", c.pid)
	return c, nil
}

// findRunning returns the cluster already running in dir, or nil if none is.
func findRunning(ctx context.Context, dir string, logger *slog.Logger) (*Cluster, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pid, port, ok := readPIDFile(filepath.Join(dir, "postmaster.pid"))
		if !ok || !isPostgres(pid) {
			return nil, nil // none, or a stale file postgres itself will clear
		}
		c := &Cluster{dir: dir, port: port, pid: pid, logger: logger}
		if err := ping(ctx, c.URL("postgres")); err == nil {
			logger.Info("using the embedded postgres already running", "dir", dir, "port", port, "pid", pid)
			return c, nil
		}
		// Starting up or shutting down: wait for it to settle one way or the other.
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("embedded postgres in %s (pid %d) is neither accepting connections nor stopping", dir, pid)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readPIDFile parses postmaster.pid: line 1 is the pid, line 4 the port.
func readPIDFile(path string) (pid, port int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	return pid, port, err1 == nil && err2 == nil && pid > 0
}

// isPostgres reports whether pid is a live postgres process (pids are reused after a reboot).
func isPostgres(pid int) bool {
	if syscall.Kill(pid, 0) == syscall.ESRCH {
		return false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return true // no /proc (macOS): trust the signal check
	}
	return strings.HasPrefix(strings.TrimSpace(string(comm)), "postgres")
}

func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("embedded postgres: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockFile takes an exclusive flock on path (gofrs/flock), waiting for it until ctx ends.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	return LockFile(ctx, path, false)
}

// LockFile takes a flock on path, shared or exclusive, polling for it until ctx ends; unlock
// releases it. dbtest uses it too.
func LockFile(ctx context.Context, path string, shared bool) (unlock func(), err error) {
	l := flock.New(path)
	try := l.TryLockContext
	if shared {
		try = l.TryRLockContext
	}
	ok, err := try(ctx, 20*time.Millisecond)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ctx.Err()
	}
	return func() { _ = l.Unlock() }, nil
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// EnsureDatabase creates database name in the cluster unless it exists.
func (c *Cluster) EnsureDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) && pgErr.SQLState() == "42P04" { // created meanwhile by another process
		return nil
	}
	return err
}
