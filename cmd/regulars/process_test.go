package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regulars/regulars/models/dbtest"
)

// runMainEnv makes the test binary run the real main instead of the tests, so that end-to-end
// tests drive the program as a separate process without a separate build step.
const runMainEnv = "REGULARS_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	dbtest.Main(m)
}

// process is one running `regulars` command.
type process struct {
	t      *testing.T
	args   []string
	cmd    *exec.Cmd
	output *syncBuffer // stdout and stderr together
	exited chan struct{}
}

// startRegulars starts `regulars args...` with env added to a clean environment (no REGULARS_*
// variables of the caller). The process is stopped, if still running, when the test ends, and
// its output is logged if the test failed.
func startRegulars(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, args: args, output: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(self, args...)
	p.cmd.Env = childEnv(env)
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start regulars %v: %v", args, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		if p.running() {
			p.signal(syscall.SIGTERM)
			if !p.waitExit(30 * time.Second) {
				p.signal(syscall.SIGKILL)
				p.waitExit(10 * time.Second)
			}
		}
		if t.Failed() {
			t.Logf("output of regulars %s:\n%s", strings.Join(args, " "), p.output.String())
		}
	})
	return p
}

func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *process) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && p.running() {
		p.t.Fatalf("signal %v to regulars %v: %v", sig, p.args, err)
	}
}

// waitExit waits up to limit for the process to exit and reports whether it did.
func (p *process) waitExit(limit time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(limit):
		return false
	}
}

// exitCode waits for the process to exit and returns its exit code (-1 if killed by a signal).
func (p *process) exitCode() int {
	p.t.Helper()
	if !p.waitExit(60 * time.Second) {
		p.t.Fatalf("regulars %v did not exit within a minute", p.args)
	}
	return p.cmd.ProcessState.ExitCode()
}

// server is a `regulars serve` process and the address it listens on.
type server struct {
	*process
	addr string // 127.0.0.1:port
	base string // http://127.0.0.1:port
}

// startServe starts `regulars serve` on a free loopback port and waits until /readyz answers 200.
func startServe(t *testing.T, env []string) *server {
	t.Helper()
	return startServeAt(t, env, freeAddr(t))
}

// startServeAt is startServe on a given address (for a REGULARS_BASE_URL that names it).
func startServeAt(t *testing.T, env []string, addr string) *server {
	t.Helper()
	s := &server{
		process: startRegulars(t, append(env[:len(env):len(env)], "REGULARS_HTTP_ADDR="+addr), "serve"),
		addr:    addr,
		base:    "http://" + addr,
	}
	probe := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(90 * time.Second) // the embedded default may run initdb first
	for {
		resp, err := probe.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if !s.running() {
			t.Fatalf("regulars serve exited at start (code %d):\n%s", s.cmd.ProcessState.ExitCode(), s.output.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("regulars serve not ready after 90s:\n%s", s.output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runRegulars runs `regulars args...` to completion and returns its stdout and stderr apart.
func runRegulars(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var outBuf, errBuf bytes.Buffer
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = childEnv(env)
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	return outBuf.String(), errBuf.String(), err
}

var tokenLine = regexp.MustCompile(`^rgl_[A-Za-z0-9_-]+\n$`)

// createKey runs `regulars apikey create args...` and returns the token it prints.
func createKey(t *testing.T, env []string, args ...string) string {
	t.Helper()
	stdout, stderr, err := runRegulars(t, env, append([]string{"apikey", "create"}, args...)...)
	if err != nil {
		t.Fatalf("regulars apikey create %v: %v\n%s", args, err, stderr)
	}
	if !tokenLine.MatchString(stdout) {
		t.Fatalf("regulars apikey create printed %q, want one token line alone", stdout)
	}
	return strings.TrimSpace(stdout)
}

func childEnv(extra []string) []string {
	env := []string{runMainEnv + "=1"}
	if _, set := os.LookupEnv("GORACE"); !set {
		// A race-enabled child otherwise sleeps a second at every exit.
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGULARS_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// apiClient talks to a server with one bearer token.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(base, token string) *apiClient {
	return &apiClient{base: base, token: token, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	}}
}

// do sends one request; err is set only when no response came back.
func (c *apiClient) do(method, path string, body []byte) (status int, respBody []byte, header http.Header, err error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, buf.Bytes(), resp.Header, nil
}

// mustDo sends one request and fails the test unless the answer has status want.
func (c *apiClient) mustDo(t *testing.T, method, path string, body any, want int) []byte {
	t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	status, resp, _, err := c.do(method, path, raw)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, resp)
	}
	return resp
}

// storeCode is the store the end-to-end tests sell in.
const storeCode = "e2e-1"

// setUpStore creates an admin key, the store and a register key for it, and returns the
// register's client.
func setUpStore(t *testing.T, srv *server, env []string) *apiClient {
	t.Helper()
	admin := newAPIClient(srv.base, createKey(t, env, "--role", "admin", "--name", "e2e admin"))
	admin.mustDo(t, http.MethodPost, "/api/v1/stores",
		map[string]string{"code": storeCode, "name": "End to end", "timezone": "Europe/Oslo", "currency": "NOK"},
		http.StatusCreated)
	return newAPIClient(srv.base, createKey(t, env, "--role", "register", "--store", storeCode, "--name", "till 1"))
}

// sale is the body of one sale; the same id always gives the same body, so a re-post is a replay.
func sale(id string, occurredAt time.Time) []byte {
	return fmt.Appendf(nil, `{"id":%q,"store":%q,"register":"till-1","kind":"sale",`+
		`"occurred_at":%q,"amount":12950,"currency":"NOK",`+
		`"items":[{"sku":"LP-1234","qty":1,"unit_price":12950}]}`,
		id, storeCode, occurredAt.Format(time.RFC3339))
}

// syncBuffer is a bytes.Buffer safe for a process's output and a test reading it at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
