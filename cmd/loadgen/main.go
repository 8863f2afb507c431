// Command loadgen posts realistic purchases from many simulated cash registers to a running
// `regulars serve` and reports throughput and latency. It only ever talks to this machine: a
// URL whose host is not a loopback address is refused, and every connection is checked again
// when it is made. Runs are bounded in time and in requests.
//
//	loadgen -tokens rgl_a,rgl_b -store oslo-1 -concurrency 32 -duration 30s
//	loadgen -tokens tokens.txt -batch 1000 -concurrency 4 -json
//	loadgen -tokens tokens.txt -redeem coffee -seed 2 -cards 2000 -duration 20s
//	loadgen -list-cards -seed 2 -cards 2000 >cards.txt
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
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Hard caps, whatever the flags say: a load tool must not be able to run away.
const (
	maxDuration    = 10 * time.Minute
	maxRequests    = 10_000_000
	maxConcurrency = 1000
	maxBatchSize   = 1000
	maxCards       = 1_000_000
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	url         string
	tokens      string
	stores      string
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	requests    int64
	mix         string
	batch       int
	redeem      string
	cards       int
	listCards   bool
	seed        uint64
	rate        float64
	timeout     time.Duration
	timezone    string
	currency    string
	runID       string
	json        bool
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL of regulars serve; must be a loopback address")
	fs.StringVar(&o.tokens, "tokens", "", "register tokens: comma-separated, or a file with one `TOKEN` or `STORE TOKEN` per line")
	fs.StringVar(&o.stores, "store", "", "store codes of the tokens: one for all, or one per token, comma-separated")
	fs.IntVar(&o.concurrency, "concurrency", 32, "simulated registers, each posting one request at a time")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to measure (at most 10m)")
	fs.DurationVar(&o.warmup, "warmup", 0, "load to send before measuring, not counted")
	fs.Int64Var(&o.requests, "requests", 0, "stop after this many measured requests (0: only -duration bounds the run; at most 10M)")
	fs.StringVar(&o.mix, "mix", "member=40,anonymous=55,refund=5", "weights of member-card sales, anonymous sales and refunds of an earlier sale")
	fs.IntVar(&o.batch, "batch", 0, "post batches of N transactions to /transactions/batch instead of single ones (1-1000)")
	fs.StringVar(&o.redeem, "redeem", "", "post redemptions of reward `CODE` to /redemptions instead of transactions, each for a member card drawn from the pool")
	fs.IntVar(&o.cards, "cards", 5000, "size of the club card pool (the same seed gives the same cards; a smaller pool is the start of a larger one)")
	fs.BoolVar(&o.listCards, "list-cards", false, "print the card pool, one card a line, and exit: register them as members to make member sales and redemptions real")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed: the same seed gives the same amounts, items and cards")
	fs.Float64Var(&o.rate, "rate", 0, "total requests per second to pace at (0: each register posts as soon as its last answer arrives); latency then counts from the scheduled send time")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.StringVar(&o.timezone, "timezone", "", "store time zone for occurred_at (default: asked from the server)")
	fs.StringVar(&o.currency, "currency", "", "store currency (default: asked from the server)")
	fs.StringVar(&o.runID, "run-id", "", "part of every transaction id that keeps runs apart (default: from the clock)")
	fs.BoolVar(&o.json, "json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.cards < 1 || o.cards > maxCards:
		return o, fmt.Errorf("-cards must be between 1 and %d", maxCards)
	case o.listCards:
		return o, nil
	case o.tokens == "":
		return o, errors.New("-tokens is required: register tokens from `regulars apikey create --role register --store CODE`")
	case o.concurrency < 1 || o.concurrency > maxConcurrency:
		return o, fmt.Errorf("-concurrency must be between 1 and %d", maxConcurrency)
	case o.duration <= 0 || o.duration > maxDuration:
		return o, fmt.Errorf("-duration must be positive and at most %s", maxDuration)
	case o.warmup < 0 || o.warmup > maxDuration:
		return o, fmt.Errorf("-warmup must be between 0 and %s", maxDuration)
	case o.requests < 0 || o.requests > maxRequests:
		return o, fmt.Errorf("-requests must be between 0 and %d", maxRequests)
	case o.batch < 0 || o.batch > maxBatchSize:
		return o, fmt.Errorf("-batch must be between 0 and %d", maxBatchSize)
	case o.rate < 0:
		return o, errors.New("-rate must not be negative")
	case o.redeem != "" && !validRewardCode(o.redeem):
		return o, fmt.Errorf("-redeem %q is not a reward code (a-z, 0-9 and -, at most 32)", o.redeem)
	case o.redeem != "" && o.batch > 0:
		return o, errors.New("-redeem and -batch do not go together: redemptions are posted one at a time")
	}
	if o.requests == 0 {
		o.requests = maxRequests
	}
	if o.runID == "" {
		o.runID = strconv.FormatInt(time.Now().UnixMilli(), 36)
	}
	return o, nil
}

// credential is a register token and the store it belongs to.
type credential struct {
	store, token string
}

// loadCredentials pairs tokens with stores. A -tokens value naming a file is read as lines of
// TOKEN or STORE TOKEN (blank lines and # comments skipped).
func loadCredentials(tokensFlag, storesFlag string) ([]credential, error) {
	var creds []credential
	if st, err := os.Stat(tokensFlag); err == nil && !st.IsDir() {
		f, err := os.Open(tokensFlag)
		if err != nil {
			return nil, fmt.Errorf("read -tokens: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			fields := strings.Fields(sc.Text())
			switch {
			case len(fields) == 0 || strings.HasPrefix(fields[0], "#"):
			case len(fields) == 1:
				creds = append(creds, credential{token: fields[0]})
			case len(fields) == 2:
				creds = append(creds, credential{store: fields[0], token: fields[1]})
			default:
				return nil, fmt.Errorf("%s:%d: want TOKEN or STORE TOKEN", tokensFlag, line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read -tokens: %w", err)
		}
	} else {
		for t := range strings.SplitSeq(tokensFlag, ",") {
			if t = strings.TrimSpace(t); t != "" {
				creds = append(creds, credential{token: t})
			}
		}
	}
	if len(creds) == 0 {
		return nil, errors.New("-tokens holds no token")
	}
	var stores []string
	for s := range strings.SplitSeq(storesFlag, ",") {
		if s = strings.TrimSpace(s); s != "" {
			stores = append(stores, s)
		}
	}
	switch {
	case len(stores) == 1:
		for i := range creds {
			creds[i].store = stores[0]
		}
	case len(stores) == len(creds):
		for i := range creds {
			creds[i].store = stores[i]
		}
	case len(stores) != 0:
		return nil, fmt.Errorf("-store names %d stores for %d tokens: give one for all, or one per token", len(stores), len(creds))
	}
	for i, c := range creds {
		if c.store == "" {
			return nil, fmt.Errorf("token %d has no store: give -store, or STORE TOKEN lines in the tokens file", i+1)
		}
	}
	return creds, nil
}

// storeInfo is what the registers need to know of a store to write its receipts.
type storeInfo struct {
	Code     string `json:"code"`
	Timezone string `json:"timezone"`
	Currency string `json:"currency"`
}

// discoverStores asks the server for the time zone and currency of each store, with one of its
// own tokens (which also checks that the tokens work before the load starts).
func discoverStores(ctx context.Context, client *http.Client, base string, creds []credential) (map[string]storeInfo, error) {
	out := map[string]storeInfo{}
	for _, c := range creds {
		if _, ok := out[c.store]; ok {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/stores", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("ask the server about store %s: %w", c.store, err)
		}
		var body struct {
			Stores []storeInfo `json:"stores"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("ask the server about store %s: GET /api/v1/stores answered %s (is the token right?)", c.store, resp.Status)
		}
		if err != nil {
			return nil, fmt.Errorf("ask the server about store %s: %w", c.store, err)
		}
		for _, s := range body.Stores {
			if s.Code == c.store {
				out[c.store] = s
			}
		}
		if _, ok := out[c.store]; !ok {
			return nil, fmt.Errorf("the server has no store %q", c.store)
		}
	}
	return out, nil
}

// stats is what the registers measured, shared by all of them.
type stats struct {
	latency  histogram
	requests atomic.Int64 // measured requests answered (any status)
	rows     atomic.Int64 // transactions stored or replayed
	created  atomic.Int64
	replayed atomic.Int64
	// Redemptions only: refused for too few points, and the latency of the ones created.
	insufficient   atomic.Int64
	createdLatency histogram
	// Single transactions only: the latency of sales and of refunds apart (a refund is checked
	// against its sale before it is queued, and its group commits with its debit in a
	// transaction of several statements).
	saleLatency, refundLatency histogram
	refunds                    atomic.Int64
	mu                         sync.Mutex
	errors                     map[string]int64
}

func (s *stats) fail(kind string, n int64) {
	s.mu.Lock()
	s.errors[kind] += n
	s.mu.Unlock()
}

// summary is the printed result.
type summary struct {
	URL         string  `json:"url"`
	Endpoint    string  `json:"endpoint"`
	Concurrency int     `json:"concurrency"`
	Batch       int     `json:"batch,omitempty"`
	Reward      string  `json:"reward,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	Seconds     float64 `json:"seconds"`
	Requests    int64   `json:"requests"`
	Rows        int64   `json:"rows"`
	Created     int64   `json:"created"`
	Replayed    int64   `json:"replayed"`
	// InsufficientPoints counts redemptions refused with 409 insufficient_points: an answer
	// the load expects once balances run out, not an error.
	InsufficientPoints int64            `json:"insufficient_points,omitempty"`
	Errors             map[string]int64 `json:"errors"`
	RequestsPerSec     float64          `json:"requests_per_sec"`
	RowsPerSec         float64          `json:"rows_per_sec"`
	LatencyMs          latencySummary   `json:"latency_ms"`
	// LatencyCreatedMs is the latency of the redemptions answered 201 alone (a refusal
	// commits nothing and is cheaper).
	LatencyCreatedMs *latencySummary `json:"latency_created_ms,omitempty"`
	// LatencySaleMs and LatencyRefundMs split LatencyMs of single transactions by kind;
	// Refunds is how many of the measured requests were refunds.
	Refunds         int64           `json:"refunds,omitempty"`
	LatencySaleMs   *latencySummary `json:"latency_sale_ms,omitempty"`
	LatencyRefundMs *latencySummary `json:"latency_refund_ms,omitempty"`
	// CPUSeconds is loadgen's own CPU time over the whole run (warm-up included): on a small
	// machine the load generator competes with the server for the same cores.
	CPUSeconds float64 `json:"cpu_seconds"`
}

type latencySummary struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if o.listCards {
		for _, c := range cardPool(o.seed, o.cards) {
			if _, err := fmt.Fprintln(stdout, c); err != nil {
				return err
			}
		}
		return nil
	}
	base := strings.TrimRight(o.url, "/")
	if err := checkLoopback(ctx, base, net.DefaultResolver); err != nil {
		return err
	}
	m, err := parseMix(o.mix)
	if err != nil {
		return err
	}
	creds, err := loadCredentials(o.tokens, o.stores)
	if err != nil {
		return err
	}
	client := newClient(o.concurrency, o.timeout)
	defer client.CloseIdleConnections()
	infos, err := discoverStores(ctx, client, base, creds)
	if err != nil {
		return err
	}

	cards := cardPool(o.seed, o.cards)
	registers := make([]*register, o.concurrency)
	for i := range registers {
		c := creds[i%len(creds)]
		info := infos[c.store]
		tz, cur := or(o.timezone, info.Timezone), strings.ToUpper(or(o.currency, info.Currency))
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return fmt.Errorf("store %s: time zone %q: %w", c.store, tz, err)
		}
		name := "till-" + strconv.Itoa(i+1)
		r := &register{store: c.store, name: name, currency: cur, loc: loc, mix: m, cards: cards,
			idPrefix: c.store + "-" + name + "-" + o.runID + "-",
			rng:      rand.New(rand.NewPCG(o.seed, uint64(i)))}
		if len(r.idPrefix)+10 > 64 {
			return fmt.Errorf("store code %q and -run-id %q make transaction ids over 64 characters", c.store, o.runID)
		}
		registers[i] = r
	}

	endpoint := "/api/v1/transactions"
	switch {
	case o.batch > 0:
		endpoint += "/batch"
	case o.redeem != "":
		endpoint = "/api/v1/redemptions"
	}
	st := &stats{errors: map[string]int64{}}
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.duration)
	var issued atomic.Int64
	var wg sync.WaitGroup
	for i, r := range registers {
		wg.Go(func() {
			w := worker{client: client, url: base + endpoint, token: creds[i%len(creds)].token, reg: r, stats: st, batch: o.batch, redeem: o.redeem}
			var interval time.Duration
			if o.rate > 0 {
				interval = time.Duration(float64(o.concurrency) / o.rate * float64(time.Second))
			}
			// Spread the registers' first sends over one interval so paced load is smooth.
			next := start
			if interval > 0 {
				next = start.Add(time.Duration(i) * interval / time.Duration(o.concurrency))
			}
			for ctx.Err() == nil {
				now := time.Now()
				if interval > 0 && now.Before(next) {
					select {
					case <-time.After(next.Sub(now)):
					case <-ctx.Done():
						return
					}
				} else if interval == 0 {
					next = now
				}
				if !next.Before(end) {
					return
				}
				measured := !next.Before(measureFrom)
				if measured && issued.Add(1) > o.requests {
					return
				}
				w.post(ctx, next, measured)
				next = next.Add(interval)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(measureFrom)

	sum := summary{URL: base, Endpoint: endpoint, Concurrency: o.concurrency, Batch: o.batch, Reward: o.redeem,
		Rate: o.rate, Seconds: elapsed.Seconds(), Requests: st.requests.Load(), Rows: st.rows.Load(),
		Created: st.created.Load(), Replayed: st.replayed.Load(), InsufficientPoints: st.insufficient.Load(),
		Errors: st.errors, LatencyMs: latencyOf(&st.latency)}
	if o.redeem != "" {
		l := latencyOf(&st.createdLatency)
		sum.LatencyCreatedMs = &l
	}
	if o.redeem == "" && o.batch == 0 {
		sales, refunds := latencyOf(&st.saleLatency), latencyOf(&st.refundLatency)
		sum.LatencySaleMs, sum.LatencyRefundMs, sum.Refunds = &sales, &refunds, st.refunds.Load()
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		sum.CPUSeconds = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	if elapsed > 0 {
		sum.RequestsPerSec = float64(sum.Requests) / elapsed.Seconds()
		sum.RowsPerSec = float64(sum.Rows) / elapsed.Seconds()
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else {
		printSummary(stdout, sum)
	}
	if sum.Requests > 0 && sum.Rows == 0 && sum.InsufficientPoints == 0 {
		return errors.New("no request was accepted; see the errors above")
	}
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func latencyOf(h *histogram) latencySummary {
	return latencySummary{P50: ms(h.Percentile(50)), P95: ms(h.Percentile(95)), P99: ms(h.Percentile(99)), Max: ms(h.Max())}
}

func printSummary(w io.Writer, s summary) {
	fmt.Fprintf(w, "target       %s%s, %d registers", s.URL, s.Endpoint, s.Concurrency)
	if s.Batch > 0 {
		fmt.Fprintf(w, ", batches of %d", s.Batch)
	}
	if s.Reward != "" {
		fmt.Fprintf(w, ", redeeming %s", s.Reward)
	}
	if s.Rate > 0 {
		fmt.Fprintf(w, ", paced at %.0f req/s", s.Rate)
	}
	fmt.Fprintf(w, "\nmeasured     %.1fs\n", s.Seconds)
	fmt.Fprintf(w, "requests     %d\n", s.Requests)
	fmt.Fprintf(w, "rows         %d (created %d, replayed %d)\n", s.Rows, s.Created, s.Replayed)
	if s.Reward != "" {
		fmt.Fprintf(w, "refused      %d insufficient_points\n", s.InsufficientPoints)
	}
	if len(s.Errors) == 0 {
		fmt.Fprintln(w, "errors       none")
	} else {
		kinds := make([]string, 0, len(s.Errors))
		for k := range s.Errors {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		parts := make([]string, len(kinds))
		for i, k := range kinds {
			parts[i] = fmt.Sprintf("%s: %d", k, s.Errors[k])
		}
		fmt.Fprintf(w, "errors       %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "throughput   %.1f req/s, %.1f rows/s\n", s.RequestsPerSec, s.RowsPerSec)
	fmt.Fprintf(w, "latency      p50 %.2fms  p95 %.2fms  p99 %.2fms  max %.2fms\n",
		s.LatencyMs.P50, s.LatencyMs.P95, s.LatencyMs.P99, s.LatencyMs.Max)
	if l := s.LatencyCreatedMs; l != nil {
		fmt.Fprintf(w, "created      p50 %.2fms  p95 %.2fms  p99 %.2fms  max %.2fms\n", l.P50, l.P95, l.P99, l.Max)
	}
	if l := s.LatencySaleMs; l != nil {
		fmt.Fprintf(w, "sales        p50 %.2fms  p95 %.2fms  p99 %.2fms  max %.2fms\n", l.P50, l.P95, l.P99, l.Max)
	}
	if l := s.LatencyRefundMs; l != nil {
		fmt.Fprintf(w, "refunds      p50 %.2fms  p95 %.2fms  p99 %.2fms  max %.2fms\n", l.P50, l.P95, l.P99, l.Max)
	}
	fmt.Fprintf(w, "loadgen cpu  %.1fs\n", s.CPUSeconds)
}

// newClient returns the one HTTP client all registers share: enough idle connections per host
// that no register ever waits for one or reconnects, no proxy (the environment's proxy must not
// carry load elsewhere), and a dialer that connects to loopback addresses only.
func newClient(concurrency int, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackOnly}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dialer.DialContext,
			MaxIdleConns:        concurrency + 8,
			MaxIdleConnsPerHost: concurrency + 8,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// worker is one register's sending side.
type worker struct {
	client *http.Client
	url    string
	token  string
	reg    *register
	stats  *stats
	batch  int
	redeem string
	buf    []byte
	sales  []sale
}

// batchResponse is the part of a batch answer the tool needs.
type batchResponse struct {
	Created  int64 `json:"created"`
	Replayed int64 `json:"replayed"`
	Failed   int64 `json:"failed"`
	Results  []struct {
		Index  int `json:"index"`
		Status int `json:"status"`
	} `json:"results"`
}

// errorResponse is the part of an error answer the tool reads: its code.
type errorResponse struct {
	Error struct {
		Code string `json:"code"`
	} `json:"error"`
}

// post sends one request (a transaction or a batch) and records the outcome. Latency counts
// from scheduled, the time the request was due, so a paced run that falls behind shows it.
func (w *worker) post(ctx context.Context, scheduled time.Time, measured bool) {
	now := time.Now()
	w.buf, w.sales = w.buf[:0], w.sales[:0]
	if w.redeem != "" {
		w.buf = w.reg.appendRedemption(w.buf, w.redeem)
	} else if w.batch > 0 {
		w.buf = append(w.buf, `{"transactions":[`...)
		for i := range w.batch {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			var s sale
			w.buf, s = w.reg.appendTransaction(w.buf, now)
			w.sales = append(w.sales, s)
		}
		w.buf = append(w.buf, "]}"...)
	} else {
		var s sale
		w.buf, s = w.reg.appendTransaction(w.buf, now)
		w.sales = append(w.sales, s)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(w.buf))
	if err != nil {
		w.stats.fail("request", 1)
		return
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		if ctx.Err() == nil && measured {
			w.stats.fail("transport", 1)
		}
		return
	}
	var br batchResponse
	var decodeErr error
	var refusal errorResponse
	switch {
	case w.batch > 0 && resp.StatusCode == http.StatusOK:
		decodeErr = json.NewDecoder(resp.Body).Decode(&br)
	case resp.StatusCode == http.StatusConflict:
		_ = json.NewDecoder(resp.Body).Decode(&refusal) // a body that is not JSON counts as a plain 409
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(scheduled)

	// Acknowledged sales become refundable, whether measured or not.
	switch {
	case w.redeem != "":
	case w.batch == 0 && resp.StatusCode == http.StatusCreated:
		if s := w.sales[0]; s.id != "" {
			w.reg.remember(s)
		}
	case w.batch > 0 && decodeErr == nil:
		for _, r := range br.Results {
			if r.Status == http.StatusCreated && r.Index >= 0 && r.Index < len(w.sales) && w.sales[r.Index].id != "" {
				w.reg.remember(w.sales[r.Index])
			}
		}
	}
	if !measured {
		return
	}
	w.stats.requests.Add(1)
	w.stats.latency.Record(took)
	if w.redeem == "" && w.batch == 0 {
		if w.sales[0].id == "" { // appendTransaction's mark of a refund
			w.stats.refunds.Add(1)
			w.stats.refundLatency.Record(took)
		} else {
			w.stats.saleLatency.Record(took)
		}
	}
	switch {
	case w.batch == 0 && resp.StatusCode == http.StatusCreated:
		w.stats.created.Add(1)
		w.stats.rows.Add(1)
		if w.redeem != "" {
			w.stats.createdLatency.Record(took)
		}
	case w.redeem != "" && resp.StatusCode == http.StatusConflict && refusal.Error.Code == "insufficient_points":
		w.stats.insufficient.Add(1)
	case w.batch == 0 && resp.StatusCode == http.StatusOK:
		w.stats.replayed.Add(1)
		w.stats.rows.Add(1)
	case w.batch > 0 && resp.StatusCode == http.StatusOK && decodeErr == nil:
		w.stats.created.Add(br.Created)
		w.stats.replayed.Add(br.Replayed)
		w.stats.rows.Add(br.Created + br.Replayed)
		if br.Failed > 0 {
			for _, r := range br.Results {
				if r.Status != http.StatusCreated && r.Status != http.StatusOK {
					w.stats.fail("item "+strconv.Itoa(r.Status), 1)
				}
			}
		}
	case decodeErr != nil:
		w.stats.fail("bad batch answer", 1)
	case refusal.Error.Code != "":
		w.stats.fail(strconv.Itoa(resp.StatusCode)+" "+refusal.Error.Code, 1)
	default:
		w.stats.fail(strconv.Itoa(resp.StatusCode), 1)
	}
}
