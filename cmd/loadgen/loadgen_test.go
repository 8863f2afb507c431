package main

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		name string
		url  string
		ok   bool
	}{
		{"accepts 127.0.0.1", "http://127.0.0.1:8080", true},
		{"accepts another address in 127/8", "http://127.1.2.3:8080", true},
		{"accepts localhost", "http://localhost:8080", true},
		{"accepts ::1 in brackets", "http://[::1]:8080", true},
		{"refuses a private address", "http://10.0.0.1:8080", false},
		{"refuses a public name", "http://example.com", false},
		{"refuses the unspecified address", "http://0.0.0.0:8080", false},
		{"refuses another scheme", "ftp://127.0.0.1/", false},
		{"refuses a URL without a host", "http:///api", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := checkLoopback(ctx, tt.url, net.DefaultResolver)
			if tt.ok && err != nil {
				t.Fatalf("checkLoopback(%q) = %v, want nil", tt.url, err)
			}
			if !tt.ok && err == nil {
				t.Fatalf("checkLoopback(%q) = nil, want a refusal", tt.url)
			}
		})
	}
}

func TestLoopbackOnlyDialHook(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{{"127.0.0.1:80", true}, {"[::1]:80", true}, {"10.0.0.1:80", false}, {"93.184.216.34:80", false}} {
		t.Run("dialling "+tt.addr, func(t *testing.T) {
			if err := loopbackOnly("tcp", tt.addr, nil); (err == nil) != tt.ok {
				t.Fatalf("loopbackOnly(%s) = %v, want ok=%v", tt.addr, err, tt.ok)
			}
		})
	}
}

func TestHistogramPercentiles(t *testing.T) {
	t.Run("small values are exact", func(t *testing.T) {
		var h histogram
		for v := 1; v <= 100; v++ {
			h.Record(time.Duration(v) * time.Microsecond)
		}
		for _, c := range []struct {
			p    float64
			want time.Duration
		}{{50, 50}, {95, 95}, {99, 99}, {100, 100}, {0.5, 1}} {
			if got := h.Percentile(c.p); got != c.want*time.Microsecond {
				t.Errorf("p%v = %v, want %v", c.p, got, c.want*time.Microsecond)
			}
		}
		if h.Max() != 100*time.Microsecond || h.Count() != 100 {
			t.Errorf("max %v count %d, want 100µs and 100", h.Max(), h.Count())
		}
	})
	t.Run("large values are within 0.2 percent of the exact nearest rank", func(t *testing.T) {
		var h histogram
		rng := rand.New(rand.NewPCG(7, 7))
		samples := make([]time.Duration, 20_000)
		for i := range samples {
			// Log-uniform between 100µs and 10s, like real latencies with a long tail.
			samples[i] = time.Duration(100*math.Pow(10, rng.Float64()*5)) * time.Microsecond
			h.Record(samples[i])
		}
		sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
		for _, p := range []float64{50, 95, 99, 99.9} {
			exact := samples[int(p/100*float64(len(samples))+0.999999)-1]
			got := h.Percentile(p)
			if got < exact || float64(got-exact) > 0.002*float64(exact)+float64(time.Microsecond) {
				t.Errorf("p%v = %v, exact %v", p, got, exact)
			}
		}
		if h.Max() != samples[len(samples)-1].Truncate(time.Microsecond) {
			t.Errorf("max = %v, want %v", h.Max(), samples[len(samples)-1])
		}
	})
	t.Run("an empty histogram reports zero", func(t *testing.T) {
		var h histogram
		if got := h.Percentile(99); got != 0 {
			t.Errorf("p99 of nothing = %v", got)
		}
	})
	t.Run("bucket bounds contain their values", func(t *testing.T) {
		for _, v := range []uint64{0, 1, 1023, 1024, 1025, 2047, 2048, 123_456, 1 << 35} {
			b := bucketOf(v)
			if hi := bucketHigh(b); hi < v || (b > 0 && bucketHigh(b-1) >= v) {
				t.Errorf("value %d in bucket %d with range (%d, %d]", v, b, bucketHigh(b-1), hi)
			}
		}
	})
}

func TestGeneratedTransactionsAreValid(t *testing.T) {
	m, err := parseMix("member=40,anonymous=40,refund=20")
	if err != nil {
		t.Fatal(err)
	}
	r := &register{store: "oslo-1", name: "till-1", currency: "NOK", loc: time.UTC, idPrefix: "oslo-1-till-1-x-",
		rng: rand.New(rand.NewPCG(1, 2)), mix: m, cards: cardPool(1, 50)}
	ids := map[string]bool{}
	refunds := 0
	for range 500 {
		buf, s := r.appendTransaction(nil, time.Now())
		var in models.TransactionInput
		if err := json.Unmarshal(buf, &in); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, buf)
		}
		if ids[in.ID] {
			t.Fatalf("id %s repeated", in.ID)
		}
		ids[in.ID] = true
		if in.Amount.Value < 1 || in.Amount.Value > 200_000 || len(in.Items) < 1 || len(in.Items) > 5 {
			t.Fatalf("amount %d with %d items out of range", in.Amount.Value, len(in.Items))
		}
		var sum int64
		for _, it := range in.Items {
			sum += it.Qty.Value * it.UnitPrice.Value
		}
		if sum != in.Amount.Value {
			t.Fatalf("items add up to %d, amount is %d: %s", sum, in.Amount.Value, buf)
		}
		if in.Member != nil && !models.ValidCard(in.Member.Card) {
			t.Fatalf("card %s has a wrong check digit", in.Member.Card)
		}
		if in.Kind == "refund" {
			refunds++
			if !ids[in.Refunds] {
				t.Fatalf("refund names %q, which this register never sent", in.Refunds)
			}
		} else {
			r.remember(s)
		}
		if _, err := time.Parse(time.RFC3339, in.OccurredAt); err != nil {
			t.Fatalf("occurred_at %q: %v", in.OccurredAt, err)
		}
	}
	if refunds == 0 {
		t.Fatal("no refund in 500 transactions with refund=20")
	}
}

func TestParseMixRefusesNonsense(t *testing.T) {
	for _, s := range []string{"", "member=0", "member=-1", "cash=10", "member"} {
		t.Run("refusing "+s, func(t *testing.T) {
			if _, err := parseMix(s); err == nil {
				t.Fatalf("parseMix(%q) accepted", s)
			}
		})
	}
}

func TestGeneratedRedemptionsAreValid(t *testing.T) {
	cards := cardPool(2, 20)
	r := &register{store: "oslo-1", name: "till-1", idPrefix: "oslo-1-till-1-x-", rng: rand.New(rand.NewPCG(2, 1)), cards: cards}
	ids := map[string]bool{}
	for range 100 {
		var in models.RedemptionInput
		buf := r.appendRedemption(nil, "coffee")
		if err := json.Unmarshal(buf, &in); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, buf)
		}
		if ids[in.ID] || in.Store != "oslo-1" || in.Reward != "coffee" || in.Member == nil || !slices.Contains(cards, in.Member.Card) {
			t.Fatalf("redemption %s: repeated id, or not from the pool", buf)
		}
		ids[in.ID] = true
	}
	for _, code := range []string{"", "-x", "Coffee", "a\"b", strings.Repeat("a", 33)} {
		if validRewardCode(code) {
			t.Errorf("validRewardCode(%q) = true", code)
		}
	}
}

func TestListCardsIsThePoolRegistersUse(t *testing.T) {
	var out, errOut strings.Builder
	if err := run(context.Background(), []string{"-list-cards", "-seed", "3", "-cards", "50"}, &out, &errOut); err != nil {
		t.Fatal(err, errOut.String())
	}
	if got, want := strings.Fields(out.String()), cardPool(3, 50); !slices.Equal(got, want) {
		t.Fatalf("-list-cards printed %v, want %v", got, want)
	}
	// A smaller pool is the start of a larger one: members registered from -cards 5000 cover
	// a run with -cards 2000.
	if small, large := cardPool(3, 20), cardPool(3, 50); !slices.Equal(small, large[:20]) {
		t.Fatal("a smaller pool is not a prefix of a larger one")
	}
}

// TestRedeemCountsRefusals runs the redeem mode against a fake server that lets each card
// redeem twice and then answers 409 insufficient_points.
func TestRedeemCountsRefusals(t *testing.T) {
	var mu sync.Mutex
	used := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/stores":
			_, _ = io.WriteString(w, `{"stores":[{"code":"oslo-1","timezone":"Europe/Oslo","currency":"NOK"}]}`)
		case "/api/v1/redemptions":
			var in models.RedemptionInput
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Member == nil {
				w.WriteHeader(http.StatusUnprocessableEntity)
				return
			}
			mu.Lock()
			used[in.Member.Card]++
			n := used[in.Member.Card]
			mu.Unlock()
			if n > 2 {
				w.WriteHeader(http.StatusConflict)
				_, _ = io.WriteString(w, `{"error":{"code":"insufficient_points","message":"…"}}`)
				return
			}
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"id":"x"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	var out, errOut strings.Builder
	err := run(context.Background(), []string{"-url", srv.URL, "-tokens", "t1", "-store", "oslo-1", "-redeem", "coffee",
		"-cards", "5", "-concurrency", "4", "-requests", "40", "-duration", "10s", "-json"}, &out, &errOut)
	if err != nil {
		t.Fatal(err, errOut.String())
	}
	var sum summary
	if err := json.Unmarshal([]byte(out.String()), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Endpoint != "/api/v1/redemptions" || sum.Requests != 40 || sum.Created != 10 || sum.InsufficientPoints != 30 ||
		len(sum.Errors) != 0 || sum.LatencyCreatedMs == nil {
		t.Fatalf("summary %s, want 40 requests: 10 created (5 cards × 2), 30 refused", out.String())
	}
}

// TestSingleSplitsLatencyByKind: single transactions report the refunds among the measured
// requests, and the latency of sales and refunds apart.
func TestSingleSplitsLatencyByKind(t *testing.T) {
	var refunds atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/stores":
			_, _ = io.WriteString(w, `{"stores":[{"code":"oslo-1","timezone":"Europe/Oslo","currency":"NOK"}]}`)
		case "/api/v1/transactions":
			var in models.TransactionInput
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				w.WriteHeader(http.StatusUnprocessableEntity)
				return
			}
			if in.Kind == "refund" {
				refunds.Add(1)
			}
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	var out, errOut strings.Builder
	err := run(context.Background(), []string{"-url", srv.URL, "-tokens", "t1", "-store", "oslo-1", "-mix", "member=40,anonymous=30,refund=30",
		"-concurrency", "2", "-requests", "400", "-warmup", "0s", "-duration", "30s", "-json"}, &out, &errOut)
	if err != nil {
		t.Fatal(err, errOut.String())
	}
	var sum summary
	if err := json.Unmarshal([]byte(out.String()), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Requests != 400 || sum.Refunds == 0 || sum.Refunds != refunds.Load() || sum.LatencySaleMs == nil || sum.LatencyRefundMs == nil {
		t.Fatalf("summary %s; the server saw %d refunds", out.String(), refunds.Load())
	}
}
