package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Latencies go into log-linear buckets: exact below 128 ns, then 64 buckets per power of two, so a
// bucket is at most 1/64 of its value wide and a quantile read at the bucket's middle is within
// 0.8 %. Memory stays fixed however long a run lasts, which keeping every sample would not.
const (
	significantBits = 7
	halfRange       = 1 << (significantBits - 1) // buckets per power of two
	maxTracked      = time.Duration(1) << 40     // about 18 minutes; longer samples count as this
	bucketCount     = (40-significantBits)*halfRange + 2*halfRange
)

// Histogram records durations in fixed buckets. The zero value is ready to use.
type Histogram struct {
	counts []uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

func bucketOf(d time.Duration) int {
	if d < 0 {
		d = 0
	}
	if d >= maxTracked {
		d = maxTracked - 1
	}
	v := uint64(d)
	if v < 2*halfRange {
		return int(v)
	}
	shift := bits.Len64(v) - significantBits
	return shift*halfRange + int(v>>shift)
}

// bucketMiddle is the value a bucket stands for.
func bucketMiddle(i int) time.Duration {
	if i < 2*halfRange {
		return time.Duration(i)
	}
	shift := i/halfRange - 1
	top := uint64(i - shift*halfRange)
	lower := top << shift
	return time.Duration(lower + (uint64(1)<<shift)/2)
}

// Record adds one sample.
func (h *Histogram) Record(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]uint64, bucketCount)
	}
	h.counts[bucketOf(d)]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Merge adds every sample of o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, bucketCount)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest sample, exact.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the average sample, exact.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile is the sample at rank ceil(q*n) (q in [0, 1]), to bucket precision and never above Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(bucketMiddle(i), h.max)
		}
	}
	return h.max
}
