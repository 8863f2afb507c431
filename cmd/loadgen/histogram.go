package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram records latencies in microseconds with bounded memory and about 0.2% relative error,
// in the manner of HdrHistogram: values below subBuckets are exact; above, each power of two is
// split into subBuckets/2 equal steps. It is safe for concurrent use (atomic counters), so all
// registers share one.
type histogram struct {
	counts [(maxExponent + 2) * subBuckets / 2]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Uint64
}

const (
	subBucketBits = 10
	subBuckets    = 1 << subBucketBits // 1024
	// maxExponent bounds the values kept exactly enough: 2^(10+maxExponent) µs is about 19 hours.
	maxExponent = 26
)

// bucketOf maps a value to its bucket. Values under subBuckets have their own bucket; a larger
// value v with bit length L keeps its top subBucketBits bits: bucket (L-subBucketBits)*512 +
// (v >> (L-subBucketBits)), which lies in [512, 1023] within its power of two.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBucketBits
	if shift > maxExponent {
		shift, v = maxExponent, (subBuckets-1)<<maxExponent
	}
	return shift*subBuckets/2 + int(v>>shift)
}

// bucketHigh is the largest value that falls in bucket b.
func bucketHigh(b int) uint64 {
	if b < subBuckets {
		return uint64(b)
	}
	shift := (b - subBuckets/2) / (subBuckets / 2)
	mant := uint64(b - shift*subBuckets/2)
	return (mant+1)<<shift - 1
}

// Record adds one latency.
func (h *histogram) Record(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	h.counts[bucketOf(us)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// Count is the number of values recorded.
func (h *histogram) Count() uint64 { return h.n.Load() }

// Max is the largest value recorded.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) * time.Microsecond }

// Percentile returns the smallest recorded value v (to the histogram's precision) such that at
// least p percent of values are <= v: the nearest-rank definition. It reports the top of the
// bucket, never more than the true maximum, so it errs high rather than flattering.
func (h *histogram) Percentile(p float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for b := range h.counts {
		seen += h.counts[b].Load()
		if seen >= rank {
			return time.Duration(min(bucketHigh(b), h.max.Load())) * time.Microsecond
		}
	}
	return h.Max()
}
