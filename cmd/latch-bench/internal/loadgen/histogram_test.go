package loadgen

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHistogramQuantilesWithinBucketPrecision(t *testing.T) {
	var h Histogram
	// 1 µs to 100 ms: four decades, so many bucket sizes are crossed.
	const n = 100_000
	for i := 1; i <= n; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := time.Duration(math.Ceil(q*n)) * time.Microsecond
		got := h.Quantile(q)
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 0.01 {
			t.Errorf("Quantile(%v) = %v, exact %v: off by %.2f%%", q, got, exact, rel*100)
		}
	}
	if diff := cmp.Diff(time.Duration(n)*time.Microsecond, h.Max()); diff != "" {
		t.Errorf("Max (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(uint64(n), h.Count()); diff != "" {
		t.Errorf("Count (-want +got):\n%s", diff)
	}
	wantMean := time.Duration(n+1) * time.Microsecond / 2
	if diff := cmp.Diff(wantMean, h.Mean()); diff != "" {
		t.Errorf("Mean (-want +got):\n%s", diff)
	}
}

func TestHistogramSmallValuesAreExact(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{3, 3, 7, 100} {
		h.Record(d)
	}
	got := []time.Duration{h.Quantile(0.25), h.Quantile(0.5), h.Quantile(0.75), h.Quantile(1)}
	if diff := cmp.Diff([]time.Duration{3, 3, 7, 100}, got); diff != "" {
		t.Errorf("quantiles (-want +got):\n%s", diff)
	}
}

func TestHistogramNeverReportsAboveMax(t *testing.T) {
	var h Histogram
	h.Record(1000*time.Millisecond + 1) // the bucket's middle lies above the only sample
	if got := h.Quantile(0.99); got != h.Max() {
		t.Errorf("Quantile(0.99) = %v, want the max %v", got, h.Max())
	}
}

func TestHistogramClampsOutOfRange(t *testing.T) {
	var h Histogram
	h.Record(-time.Second)
	h.Record(time.Hour)
	if got := h.Quantile(0); got != 0 {
		t.Errorf("negative sample reads %v, want 0", got)
	}
	if got := h.Quantile(1); got < maxTracked/2 || got > h.Max() {
		t.Errorf("huge sample reads %v, want near %v", got, maxTracked)
	}
}

func TestHistogramMergeEqualsRecordingTogether(t *testing.T) {
	var a, b, both Histogram
	for i := range 5000 {
		d := time.Duration(i*i) * time.Nanosecond
		both.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var empty Histogram
	a.Merge(&b)
	a.Merge(&empty)
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99, 1} {
		if a.Quantile(q) != both.Quantile(q) {
			t.Errorf("Quantile(%v): merged %v, together %v", q, a.Quantile(q), both.Quantile(q))
		}
	}
	if a.Count() != both.Count() || a.Mean() != both.Mean() || a.Max() != both.Max() {
		t.Errorf("merged count/mean/max %d/%v/%v, together %d/%v/%v", a.Count(), a.Mean(), a.Max(), both.Count(), both.Mean(), both.Max())
	}
}

func TestEmptyHistogramReadsZero(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Errorf("empty histogram: p50 %v mean %v max %v", h.Quantile(0.5), h.Mean(), h.Max())
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	// Every bucket's middle must map back to that bucket, and indexes must never skip or overflow.
	for i := range bucketCount {
		if got := bucketOf(bucketMiddle(i)); got != i {
			t.Fatalf("bucketOf(bucketMiddle(%d)) = %d", i, got)
		}
	}
	if got := bucketOf(maxTracked - 1); got != bucketCount-1 {
		t.Errorf("largest tracked value lands in bucket %d, want %d", got, bucketCount-1)
	}
}
