// Command benchsend measures campaign sending for scripts/bench-send.sh: N mails to a loopback
// SMTP sink, sent two ways in the same run, against the same sink:
//
//  1. a bare go-mail loop: C goroutines, each with one connection it reuses for its share of
//     the mails, each mail built with go-mail like the server's (multipart/alternative,
//     Message-ID, List-Unsubscribe and List-Unsubscribe-Post), no database;
//  2. the real thing: a `regulars serve` process (the binary given by -regulars) with
//     REGULARS_SEND_CONCURRENCY=C and REGULARS_SEND_RATE=0, a database holding N mailable
//     members in one saved segment, and a campaign to it created and scheduled through the API;
//  3. the bare loop again (the machine is noisy: the ceiling is the mean of the two).
//
// With -baseline (another regulars binary, e.g. an earlier revision), that binary's server is
// measured the same way between 1 and 2. Each server runs on a freshly created database (the one
// -database-url names is dropped and created again). With -pg-pid, PostgreSQL's CPU from the
// campaign's creation to its end is measured for each; with -pgss, pg_stat_statements' top
// statements of each server's run are printed.
//
// The server's figure runs from its run's started_at (the recipient snapshot included) to the
// sink's last mail; its peak RSS is VmHWM of the serve process at the end. The sink counts every
// mail by its envelope recipient, so the run also checks that each member got exactly one.
//
//	benchsend -database-url postgres://... -regulars ./regulars -n 100000 -concurrency 4
//
// With -flow (issue 11, cmd/benchflows/bench-flows.sh) it compares flow mail with campaign mail
// instead, -rounds times each, alternated, each run on a freshly created database (the one
// -database-url names is dropped and created again) and a fresh serve with
// REGULARS_QUIET_START=REGULARS_QUIET_END=00:00 and REGULARS_MAIL_CAP=0: the campaign run as
// above; the flow run activates a joined flow with one mail step through the API and then sets
// confirmed_at = now() for the N members, so that the engine's next tick enters them all and
// queues their mails. Both figures run from the first to the last mail at the sink.
//
//	benchsend -database-url postgres://.../send -regulars ./regulars -flow -rounds 3 -n 20000 -concurrency 16
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"
	"github.com/wneessen/go-mail"
)

func main() {
	var (
		dbURL       = flag.String("database-url", "", "PostgreSQL URL of an empty database (required)")
		regulars    = flag.String("regulars", "", "the regulars binary (required)")
		n           = flag.Int("n", 100000, "mails to send each way")
		concurrency = flag.Int("concurrency", 4, "SMTP connections each way (REGULARS_SEND_CONCURRENCY)")
		work        = flag.String("work", "", "a directory for the server's data dir and log (default: a temporary one)")
		pprofAddr   = flag.String("pprof", "", "REGULARS_PPROF_ADDR of the server, to profile it during the run")
		skipBare    = flag.Bool("skip-bare", false, "measure the server only")
		bareLean    = flag.Bool("bare-lean", false, "the bare loop sends no NOOP before and no RSET after each mail, as campaigns/mailer does since 705ae91 (default: go-mail's defaults, the ceiling of earlier figures)")
		flowMode    = flag.Bool("flow", false, "compare flow mail with campaign mail (the database is dropped and created for each run)")
		rounds      = flag.Int("rounds", 3, "with -flow: runs of each way, alternated")
		pgPID       = flag.Int("pg-pid", 0, "the postmaster's pid, to measure PostgreSQL's CPU during the server's run")
		baseline    = flag.String("baseline", "", "another regulars binary (an earlier revision) to measure the same way before this one, each on a fresh database")
		pgss        = flag.Bool("pgss", false, "print pg_stat_statements' top statements of the server's run (the cluster must preload it)")
	)
	flag.Parse()
	leanBare = *bareLean
	if *dbURL == "" || *regulars == "" || *n < 1 || *concurrency < 1 || *rounds < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := start(*work, func(sink *sink, work string) error {
		if *flowMode {
			return runFlows(sink, *dbURL, *regulars, *n, *concurrency, *rounds, work, *pprofAddr)
		}
		return run(sink, *dbURL, *regulars, *baseline, *n, *concurrency, work, *pprofAddr, *skipBare, pgWatch{pid: *pgPID, statements: *pgss})
	}); err != nil {
		fmt.Fprintln(os.Stderr, "benchsend:", err)
		os.Exit(1)
	}
}

// start makes the work directory (a temporary one when work is empty) and the sink, and runs f.
func start(work string, f func(sink *sink, work string) error) error {
	if work == "" {
		dir, err := os.MkdirTemp("", "benchsend")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	sink, err := startSink()
	if err != nil {
		return err
	}
	defer sink.close()
	return f(sink, work)
}

// result is one way of sending.
type result struct {
	Way     string  `json:"way"`
	Mails   int     `json:"mails"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"mails_per_s"`
}

func run(sink *sink, dbURL, regulars, baseline string, n, concurrency int, work, pprofAddr string, skipBare bool, pg pgWatch) error {
	ctx := context.Background()
	logf("sink on %s; %d mails each way over %d connections", sink.addr, n, concurrency)

	var results []result
	bare := func(label string) error {
		sink.reset()
		res, err := bareLoop(ctx, sink, n, concurrency)
		if err != nil {
			return err
		}
		if err := sink.check(n, "bare.example"); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		res.Way = label
		results = append(results, res)
		logf("%s: %d mails in %.2f s, %.0f mails/s", label, res.Mails, res.Seconds, res.PerSec)
		return nil
	}
	if !skipBare {
		if err := bare("bare go-mail loop (before)"); err != nil {
			return err
		}
	}

	serve := func(binary, label string) (serverResult, error) {
		if err := recreate(ctx, dbURL); err != nil {
			return serverResult{}, err
		}
		dir := filepath.Join(work, label)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return serverResult{}, err
		}
		sink.reset()
		srv, err := serveRun(ctx, dbURL, binary, dir, sink, n, concurrency, pprofAddr, serveOptions{pg: pg})
		if err != nil {
			return srv, err
		}
		srv.Way += " " + label
		logf("regulars serve %s: %d mails in %.2f s (%.0f mails/s; sending alone %.2f s, %.0f mails/s), peak RSS %.1f MB, server CPU %.0f µs a mail, PostgreSQL CPU %.4f ms a mail",
			label, srv.Mails, srv.Seconds, srv.PerSec, srv.sendSeconds, float64(n)/srv.sendSeconds, float64(srv.peakRSSKB)/1024,
			1e6*srv.cpuSeconds/float64(n), 1e3*srv.pgCPUSeconds/float64(n))
		if srv.statements != "" {
			fmt.Fprint(os.Stderr, srv.statements)
		}
		return srv, nil
	}
	var base serverResult
	if baseline != "" {
		var err error
		if base, err = serve(baseline, "baseline"); err != nil {
			return err
		}
		results = append(results, base.result)
	}
	srv, err := serve(regulars, "this")
	if err != nil {
		return err
	}
	results = append(results, srv.result)

	if !skipBare {
		if err := bare("bare go-mail loop (after)"); err != nil {
			return err
		}
	}

	out := map[string]any{"mails": n, "concurrency": concurrency, "results": results,
		"server_snapshot_s": srv.snapshotSeconds, "server_cpu_s": srv.cpuSeconds, "server_send_only_s": srv.sendSeconds,
		"server_peak_rss_mb": float64(srv.peakRSSKB) / 1024, "server_rss_at_ready_mb": float64(srv.readyRSSKB) / 1024}
	if pg.pid != 0 {
		out["pg_cpu_s"] = srv.pgCPUSeconds
		out["pg_cpu_ms_per_mail"] = 1e3 * srv.pgCPUSeconds / float64(n)
	}
	if baseline != "" {
		out["baseline"] = map[string]any{"mails_per_s": base.PerSec, "send_only_mails_per_s": float64(n) / base.sendSeconds,
			"server_cpu_s": base.cpuSeconds, "server_peak_rss_mb": float64(base.peakRSSKB) / 1024,
			"pg_cpu_ms_per_mail": 1e3 * base.pgCPUSeconds / float64(n), "snapshot_s": base.snapshotSeconds}
	}
	if !skipBare {
		ceiling := (results[0].PerSec + results[len(results)-1].PerSec) / 2
		out["bare_mean_mails_per_s"] = ceiling
		out["ratio"] = srv.PerSec / ceiling
		out["ratio_send_only"] = float64(n) / srv.sendSeconds / ceiling
		fmt.Printf("bare go-mail loop: %.0f and %.0f mails/s (mean %.0f)\n", results[0].PerSec, results[len(results)-1].PerSec, ceiling)
		if baseline != "" {
			out["baseline"].(map[string]any)["ratio"] = base.PerSec / ceiling
			fmt.Printf("baseline serve:    %.0f mails/s, %.0f%% of the bare loop; sending alone %.0f mails/s, %.0f%%; server CPU %.0f µs, PostgreSQL CPU %.4f ms a mail, peak RSS %.1f MB\n",
				base.PerSec, 100*base.PerSec/ceiling, float64(n)/base.sendSeconds, 100*float64(n)/base.sendSeconds/ceiling,
				1e6*base.cpuSeconds/float64(n), 1e3*base.pgCPUSeconds/float64(n), float64(base.peakRSSKB)/1024)
		}
		fmt.Printf("regulars serve:    %.0f mails/s, %.0f%% of the bare loop (target >= 80%%); sending alone %.0f mails/s, %.0f%%\n",
			srv.PerSec, 100*srv.PerSec/ceiling, float64(n)/srv.sendSeconds, 100*float64(n)/srv.sendSeconds/ceiling)
	}
	fmt.Printf("server peak RSS:   %.1f MB (VmHWM; %.1f MB when ready; target < 150 MB)\n",
		float64(srv.peakRSSKB)/1024, float64(srv.readyRSSKB)/1024)
	fmt.Printf("server CPU:        %.1f s during the run, %.0f µs a mail\n", srv.cpuSeconds, 1e6*srv.cpuSeconds/float64(n))
	if pg.pid != 0 {
		fmt.Printf("PostgreSQL CPU:    %.2f s from the schedule to the run's end, %.4f ms a mail (target <= 0.02)\n",
			srv.pgCPUSeconds, 1e3*srv.pgCPUSeconds/float64(n))
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// leanBare is -bare-lean: the bare loop without go-mail's NOOP before and RSET after each mail.
var leanBare bool

// bareLoop sends n mails from concurrency goroutines, each on one connection it keeps.
func bareLoop(ctx context.Context, sink *sink, n, concurrency int) (result, error) {
	opts := []mail.Option{mail.WithPort(sink.port), mail.WithTLSPortPolicy(mail.NoTLS),
		mail.WithTimeout(30 * time.Second), mail.WithHELO("benchsend.localhost")}
	if leanBare {
		opts = append(opts, mail.WithoutNoop(), mail.WithoutRset())
	}
	html, text := bodies()
	start := time.Now()
	errs := make(chan error, concurrency)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			client, err := mail.NewClient("127.0.0.1", opts...)
			if err != nil {
				errs <- err
				return
			}
			conn, err := client.DialToSMTPClientWithContext(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = client.CloseWithSMTPClient(conn) }()
			for i := w; i < n; i += concurrency {
				msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
				if err := msg.From("Regulars club <club@bare.example>"); err != nil {
					errs <- err
					return
				}
				if err := msg.To(fmt.Sprintf("Member %d <member.%d@bare.example>", i+1, i+1)); err != nil {
					errs <- err
					return
				}
				msg.Subject(fmt.Sprintf("Hello Member %d, new records are in", i+1))
				msg.SetMessageIDWithValue(fmt.Sprintf("run-1.member-%d@bare.example", i+1))
				msg.SetDate()
				unsub := fmt.Sprintf("https://club.example/unsubscribe?token=%040d", i+1)
				msg.SetGenHeader("List-Unsubscribe", "<"+unsub+">, <mailto:club@bare.example?subject=unsubscribe>")
				msg.SetGenHeader("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
				msg.SetBodyString(mail.TypeTextPlain, text+"\n\nUnsubscribe: "+unsub+"\n")
				msg.AddAlternativeString(mail.TypeTextHTML, html+`<p><a href="`+unsub+`">Unsubscribe</a></p>`)
				if err := client.SendWithSMTPClient(conn, msg); err != nil {
					errs <- fmt.Errorf("bare loop: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return result{}, err
	}
	secs := time.Since(start).Seconds()
	return result{Mails: n, Seconds: secs, PerSec: float64(n) / secs}, nil
}

// bodies are the campaign's bodies (the bare loop sends them as they are; the server renders
// them as templates, adds its footer and rewrites the link for click tracking).
func bodies() (html, text string) {
	return `<h1>New records are in</h1><p>Hello {{.Member.FirstName}}, forty new LPs arrived this week, ` +
			`from jazz to krautrock.</p><p><a href="https://shop.example/new">See them</a> before Saturday.</p>`,
		"Hello {{.Member.FirstName}}, forty new LPs arrived this week, from jazz to krautrock.\n" +
			"See them before Saturday: https://shop.example/new"
}

// serverResult is the dispatcher's way.
type serverResult struct {
	result
	sendSeconds, snapshotSeconds float64
	peakRSSKB, readyRSSKB        int64
	cpuSeconds                   float64 // the serve process's user+system CPU during the run
	pgCPUSeconds                 float64 // PostgreSQL's, from the schedule to the run's end (with -pg-pid)
	statements                   string  // pg_stat_statements' top statements of the run (with -pgss)
}

// serveOptions: flowEnv switches quiet hours and the mail cap off (REGULARS_QUIET_START =
// REGULARS_QUIET_END = 00:00, REGULARS_MAIL_CAP=0); flow sends through a joined flow instead of
// a campaign.
type serveOptions struct {
	flowEnv, flow bool
	pg            pgWatch
}

func serveRun(ctx context.Context, dbURL, regulars, work string, sink *sink, n, concurrency int, pprofAddr string, opts serveOptions) (serverResult, error) {
	var out serverResult
	addr, err := freeAddr()
	if err != nil {
		return out, err
	}
	env := append(os.Environ(), "REGULARS_DATABASE_URL="+dbURL, "REGULARS_DATA_DIR="+filepath.Join(work, "data"),
		"REGULARS_SMTP_URL=smtp://"+sink.addr+"?tls=none", "REGULARS_HTTP_ADDR="+addr,
		"REGULARS_BASE_URL=https://club.example", "REGULARS_MAIL_FROM=Regulars club <club@bench.example>",
		"REGULARS_SEND_CONCURRENCY="+strconv.Itoa(concurrency), "REGULARS_SEND_RATE=0", "REGULARS_LOG_LEVEL=warn")
	if pprofAddr != "" {
		env = append(env, "REGULARS_PPROF_ADDR="+pprofAddr)
	}
	if opts.flowEnv {
		env = append(env, "REGULARS_QUIET_START=00:00", "REGULARS_QUIET_END=00:00", "REGULARS_MAIL_CAP=0")
	}
	regularsCmd := func(args ...string) (string, error) {
		cmd := exec.Command(regulars, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("regulars %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return strings.TrimSpace(string(b)), nil
	}
	if _, err := regularsCmd("migrate"); err != nil {
		return out, err
	}
	if err := seed(ctx, dbURL, n); err != nil {
		return out, err
	}
	token, err := regularsCmd("apikey", "create", "--role", "marketer", "--name", "benchsend")
	if err != nil {
		return out, err
	}

	logFile, err := os.Create(filepath.Join(work, "serve.log"))
	if err != nil {
		return out, err
	}
	defer logFile.Close()
	serve := exec.Command(regulars, "serve")
	serve.Env = env
	serve.Stdout, serve.Stderr = logFile, logFile
	if err := serve.Start(); err != nil {
		return out, err
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	defer func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = serve.Process.Kill()
		}
	}()
	api := &api{base: "http://" + addr, token: token}
	for deadline := time.Now().Add(time.Minute); ; {
		if resp, err := http.Get(api.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			return out, fmt.Errorf("regulars serve exited: %v (see %s)", err, logFile.Name())
		default:
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("regulars serve not ready after a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid := serve.Process.Pid
	if out.readyRSSKB, err = vmHWM(pid); err != nil {
		return out, err
	}
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return out, err
	}

	if opts.flow {
		return flowRun(ctx, dbURL, api, sink, n, pid, cpu0, exited, logFile.Name())
	}
	html, text := bodies()
	pgCPU0, err := opts.pg.start(ctx, dbURL)
	if err != nil {
		return out, err
	}
	var seg, camp struct{ ID int64 }
	if err := api.call("POST", "/api/v1/segments", map[string]any{"name": "bench",
		"rules": map[string]any{"field": "email_domain", "op": "eq", "value": "bench.example"}}, &seg); err != nil {
		return out, err
	}
	if err := api.call("POST", "/api/v1/campaigns", map[string]any{"name": "Bench", "segment_id": seg.ID,
		"subject": "Hello {{.Member.FirstName}}, new records are in", "html": html, "text": text}, &camp); err != nil {
		return out, err
	}
	if err := api.call("POST", fmt.Sprintf("/api/v1/campaigns/%d/schedule", camp.ID),
		map[string]any{"send_at": time.Now().Add(1500 * time.Millisecond).Format(time.RFC3339Nano)}, nil); err != nil {
		return out, err
	}
	logf("campaign %d scheduled; waiting for %d mails", camp.ID, n)
	if err := awaitMails(sink, n, exited, logFile.Name()); err != nil {
		return out, err
	}
	first, last := sink.window()
	// The run's started_at is the start of the transaction that snapshots its recipients.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return out, err
	}
	defer conn.Close(ctx)
	var started time.Time
	for deadline := time.Now().Add(time.Minute); ; {
		var status string
		if err := conn.QueryRow(ctx, `SELECT r.started_at, c.status FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id
			WHERE r.campaign_id = $1`, camp.ID).Scan(&started, &status); err != nil {
			return out, err
		}
		if status == "sent" {
			break
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("campaign still %s a minute after its last mail", status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out.pgCPUSeconds, out.statements, err = opts.pg.stop(ctx, dbURL, pgCPU0); err != nil {
		return out, err
	}
	err = out.finish(sink, n, pid, cpu0, "regulars serve (dispatcher and sender)", started, first, last)
	return out, err
}

// awaitMails waits until the sink has n mails, failing when a minute passes without one or the
// server exits.
func awaitMails(sink *sink, n int, exited chan error, logName string) error {
	lastCount, lastChange := 0, time.Now()
	for {
		count := sink.count()
		if count >= n {
			return nil
		}
		if count != lastCount {
			lastCount, lastChange = count, time.Now()
		}
		if time.Since(lastChange) > time.Minute {
			return fmt.Errorf("no progress for a minute at %d mails (see %s)", count, logName)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("regulars serve exited: %v (see %s)", err, logName)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// finish fills in a run's figures once its n mails are in: peak RSS and CPU of process pid
// (cpu0 at the start), the check that each member got one mail, the times from start.
func (out *serverResult) finish(sink *sink, n, pid int, cpu0 float64, way string, start, first, last time.Time) error {
	var err error
	if out.peakRSSKB, err = vmHWM(pid); err != nil {
		return err
	}
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return err
	}
	out.cpuSeconds = cpu1 - cpu0
	if err := sink.check(n, "bench.example"); err != nil {
		return fmt.Errorf("%s: %w", way, err)
	}
	out.Way = way
	out.Mails = n
	out.Seconds = last.Sub(start).Seconds()
	out.PerSec = float64(n) / out.Seconds
	out.sendSeconds = last.Sub(first).Seconds()
	out.snapshotSeconds = first.Sub(start).Seconds()
	return nil
}

// seed inserts n active members with confirmed consent at bench.example.
func seed(ctx context.Context, dbURL string, n int) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	start := time.Now()
	if _, err := conn.Exec(ctx, `
		INSERT INTO members (card, email, name, status, marketing_consent, source)
		SELECT lpad(g::text, 13, '0'), 'member.' || g || '@bench.example', 'Member ' || g, 'active', 'confirmed', 'till'
		FROM generate_series(1, $1::int) g`, n); err != nil {
		return fmt.Errorf("seed members: %w", err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE members`); err != nil {
		return err
	}
	logf("seeded %d members in %.1f s", n, time.Since(start).Seconds())
	return nil
}

// cpuSeconds is the user and system CPU time process pid has used so far.
func cpuSeconds(pid int) (float64, error) { return procCPU(pid, false) }

// procCPU is the user and system CPU time process pid has used so far, with that of its reaped
// children when children is set.
func procCPU(pid int, children bool) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name (in parentheses, which may hold spaces): utime and
	// stime are the 12th and 13th of them, in clock ticks (100 a second on Linux).
	rest := string(b[bytes.LastIndexByte(b, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	if children && len(f) >= 15 {
		cu, err1 := strconv.ParseFloat(f[13], 64)
		cs, err2 := strconv.ParseFloat(f[14], 64)
		if err1 == nil && err2 == nil {
			u, s = u+cu, s+cs
		}
	}
	return (u + s) / 100, nil
}

// vmHWM is the peak resident set size of process pid in kB.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM in /proc/pid/status")
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// api calls the server with a bearer token.
type api struct{ base, token string }

func (a *api) call(method, path string, body, into any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if into != nil {
		return json.Unmarshal(b, into)
	}
	return nil
}

// sink is a minimal SMTP server that reads and discards every message, counting them by
// envelope recipient and noting when the first and last arrived.
type sink struct {
	addr   string
	port   int
	server *smtp.Server

	mu          sync.Mutex
	total       int
	rcpt        map[string]int
	first, last time.Time
}

func startSink() (*sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{addr: l.Addr().String(), port: l.Addr().(*net.TCPAddr).Port, rcpt: map[string]int{}}
	s.server = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{sink: s}, nil }))
	s.server.Domain = "sink.localhost"
	s.server.AllowInsecureAuth = true
	s.server.MaxMessageBytes = 1 << 20
	go func() { _ = s.server.Serve(l) }()
	return s, nil
}

func (s *sink) close() { _ = s.server.Close() }

func (s *sink) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total, s.rcpt, s.first, s.last = 0, map[string]int{}, time.Time{}, time.Time{}
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

func (s *sink) window() (first, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, s.last
}

// check tells whether member.1 … member.n at domain got exactly one mail each, and nobody else any.
func (s *sink) check(n int, domain string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total != n || len(s.rcpt) != n {
		return fmt.Errorf("the sink got %d mails for %d addresses, want %d for %d", s.total, len(s.rcpt), n, n)
	}
	for i := 1; i <= n; i++ {
		if got := s.rcpt[fmt.Sprintf("member.%d@%s", i, domain)]; got != 1 {
			return fmt.Errorf("member.%d@%s got %d mails, want 1", i, domain, got)
		}
	}
	return nil
}

type sinkSession struct {
	sink *sink
	to   []string
}

func (ss *sinkSession) AuthMechanisms() []string { return nil }
func (ss *sinkSession) Mail(string, *smtp.MailOptions) error {
	return nil
}
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}
func (ss *sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	now := time.Now()
	s := ss.sink
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	for _, to := range ss.to {
		s.rcpt[strings.ToLower(to)]++
	}
	if s.first.IsZero() {
		s.first = now
	}
	s.last = now
	return nil
}
func (ss *sinkSession) Reset()        { ss.to = nil }
func (ss *sinkSession) Logout() error { return nil }

// flowRun is serveRun's flow way: a joined flow with one mail step, activated through the API,
// then confirmed_at = now() for the n members in one statement; it waits for the n mails.
func flowRun(ctx context.Context, dbURL string, api *api, sink *sink, n, pid int, cpu0 float64, exited chan error, logName string) (serverResult, error) {
	var out serverResult
	html, text := bodies()
	var flow struct{ ID int64 }
	if err := api.call("POST", "/api/v1/flows", map[string]any{"name": "Bench welcome",
		"trigger": map[string]any{"event": "joined"},
		"steps": []any{map[string]any{"mail": map[string]any{
			"subject": "Hello {{.Member.FirstName}}, new records are in", "html": html, "text": text}}},
		"exit_on_purchase": true, "holdout_percent": 0}, &flow); err != nil {
		return out, err
	}
	if err := api.call("POST", fmt.Sprintf("/api/v1/flows/%d/activate", flow.ID), map[string]any{}, nil); err != nil {
		return out, err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return out, err
	}
	defer conn.Close(ctx)
	time.Sleep(10 * time.Millisecond) // confirmed_at after activated_at
	var joined time.Time
	if err := conn.QueryRow(ctx, `WITH u AS (UPDATE members SET confirmed_at = now() WHERE email LIKE '%@bench.example' RETURNING 1)
		SELECT now() FROM u LIMIT 1`).Scan(&joined); err != nil {
		return out, err
	}
	logf("flow %d active; %d members joined; waiting for %d mails", flow.ID, n, n)
	if err := awaitMails(sink, n, exited, logName); err != nil {
		return out, err
	}
	first, last := sink.window()
	// Its "snapshot" time is from the members' joining to the first mail.
	err = out.finish(sink, n, pid, cpu0, "regulars serve, flow (engine and sender)", joined, first, last)
	return out, err
}

// recreate drops the database dbURL names and creates it again, empty.
func recreate(ctx context.Context, dbURL string) error {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return err
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+ident+` WITH (FORCE)`); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `CREATE DATABASE `+ident)
	return err
}

// flowRound is one run of either way in -flow mode.
type flowRound struct {
	Way        string  `json:"way"`
	Round      int     `json:"round"`
	SendS      float64 `json:"first_to_last_mail_s"`
	PerSec     float64 `json:"mails_per_s"`
	LeadS      float64 `json:"lead_s"` // campaign: run start to first mail; flow: joining to first mail
	CPUS       float64 `json:"server_cpu_s"`
	PeakRSSMB  float64 `json:"server_peak_rss_mb"`
	LoadAtDone string  `json:"load_average"`
}

// runFlows alternates flow and campaign runs, rounds of each, and prints mails/s (first to last
// mail at the sink) and the ratio of the medians.
func runFlows(sink *sink, dbURL, regulars string, n, concurrency, rounds int, work, pprofAddr string) error {
	ctx := context.Background()
	logf("sink on %s; %d mails a run over %d connections, %d rounds of flow and campaign", sink.addr, n, concurrency, rounds)
	var runs []flowRound
	per := map[string][]float64{}
	for r := range rounds {
		ways := []bool{true, false}
		if r%2 == 1 {
			ways = []bool{false, true}
		}
		for _, flow := range ways {
			if err := recreate(ctx, dbURL); err != nil {
				return err
			}
			sink.reset()
			dir := filepath.Join(work, fmt.Sprintf("send-%d-%t", r+1, flow))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			srv, err := serveRun(ctx, dbURL, regulars, dir, sink, n, concurrency, pprofAddr, serveOptions{flowEnv: true, flow: flow})
			if err != nil {
				return err
			}
			way := "campaign"
			if flow {
				way = "flow"
			}
			load, _ := os.ReadFile("/proc/loadavg")
			fr := flowRound{Way: way, Round: r + 1, SendS: srv.sendSeconds, PerSec: float64(n) / srv.sendSeconds,
				LeadS: srv.snapshotSeconds, CPUS: srv.cpuSeconds, PeakRSSMB: float64(srv.peakRSSKB) / 1024,
				LoadAtDone: strings.Join(strings.Fields(string(load))[:3], " ")}
			runs = append(runs, fr)
			per[way] = append(per[way], fr.PerSec)
			logf("%s, round %d: %d mails in %.2f s from first to last, %.0f mails/s (first mail %.2f s after %s), server CPU %.1f s, peak RSS %.1f MB",
				way, r+1, n, fr.SendS, fr.PerSec, fr.LeadS, map[bool]string{true: "joining", false: "the run's start"}[flow], fr.CPUS, fr.PeakRSSMB)
		}
	}
	med := func(xs []float64) float64 {
		s := append([]float64(nil), xs...)
		sort.Float64s(s)
		if len(s)%2 == 1 {
			return s[len(s)/2]
		}
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	flowMed, campMed := med(per["flow"]), med(per["campaign"])
	out := map[string]any{"mails": n, "concurrency": concurrency, "runs": runs,
		"flow_median_mails_per_s": flowMed, "campaign_median_mails_per_s": campMed, "ratio": flowMed / campMed}
	var ratios []float64
	for i := range per["flow"] {
		ratios = append(ratios, per["flow"][i]/per["campaign"][i])
	}
	out["ratio_per_round"] = ratios
	fmt.Printf("flow mail:     %v mails/s, median %.0f\n", rounded(per["flow"]), flowMed)
	fmt.Printf("campaign mail: %v mails/s, median %.0f\n", rounded(per["campaign"]), campMed)
	fmt.Printf("flow / campaign: %.2f (medians; per round %v; target >= 0.90)\n", flowMed/campMed, ratios)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func rounded(xs []float64) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x + 0.5)
	}
	return out
}

// pgWatch measures PostgreSQL during the server's run: the CPU of the postmaster pid and its
// backends, and (statements) pg_stat_statements' top statements.
type pgWatch struct {
	pid        int
	statements bool
}

// start resets pg_stat_statements and returns PostgreSQL's CPU so far.
func (w pgWatch) start(ctx context.Context, dbURL string) (float64, error) {
	if w.statements {
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return 0, err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
			return 0, err
		}
		if _, err := conn.Exec(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
			return 0, err
		}
	}
	return w.cpu()
}

// stop returns PostgreSQL's CPU since cpu0 and the statements' report.
func (w pgWatch) stop(ctx context.Context, dbURL string, cpu0 float64) (float64, string, error) {
	cpu1, err := w.cpu()
	if err != nil || !w.statements {
		return cpu1 - cpu0, "", err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
		SELECT calls, round((total_exec_time + total_plan_time)::numeric, 1), round(total_plan_time::numeric, 1),
		       rows, shared_blks_hit + shared_blks_read, shared_blks_dirtied, wal_fpi, round(wal_bytes / 1024),
		       regexp_replace(left(query, 140), '\s+', ' ', 'g')
		FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 12`)
	if err != nil {
		return 0, "", err
	}
	var b strings.Builder
	b.WriteString("pg_stat_statements (calls, total ms, of which planning, rows, buffers, dirtied, WAL full pages, WAL kB, statement):\n")
	for rows.Next() {
		var calls, nrows, blocks, dirtied, fpi int64
		var total, plan, walKB float64
		var q string
		if err := rows.Scan(&calls, &total, &plan, &nrows, &blocks, &dirtied, &fpi, &walKB, &q); err != nil {
			return 0, "", err
		}
		fmt.Fprintf(&b, "  %7d %9.1f %8.1f %8d %9d %7d %6d %7.0f  %s\n", calls, total, plan, nrows, blocks, dirtied, fpi, walKB, q)
	}
	if err := rows.Err(); err != nil {
		return 0, "", err
	}
	// Whether the recipients' updates (claims, marks) were HOT: each database here is fresh, so
	// the counters are the run's (as far as the backends have reported them: they flush their
	// counts at most once a second).
	// Autovacuum's and autoanalyze's passes over it count in PostgreSQL's CPU (and an analyze
	// makes every connection plan its statements again): they explain some of the runs' spread.
	var ins, upd, hot, vacuums, analyzes int64
	if err := conn.QueryRow(ctx, `
		SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd, autovacuum_count, autoanalyze_count
		FROM pg_stat_user_tables WHERE relname = 'campaign_recipients'`).
		Scan(&ins, &upd, &hot, &vacuums, &analyzes); err != nil {
		return 0, "", err
	}
	fmt.Fprintf(&b, "campaign_recipients: %d rows inserted, %d updated, of which HOT %d (%.0f%%); autovacuum %d, autoanalyze %d\n",
		ins, upd, hot, 100*float64(hot)/max(float64(upd), 1), vacuums, analyzes)
	return cpu1 - cpu0, b.String(), nil
}

// cpu is the user and system CPU of the postmaster with its reaped children and of its live
// children (the backends), in seconds; 0 without a pid.
func (w pgWatch) cpu() (float64, error) {
	if w.pid == 0 {
		return 0, nil
	}
	total, err := procCPU(w.pid, true)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		if len(f) < 2 || f[1] != strconv.Itoa(w.pid) {
			continue
		}
		if c, err := procCPU(pid, false); err == nil {
			total += c
		}
	}
	return total, nil
}
