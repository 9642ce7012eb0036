package loadgen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Latencies are kept in a fixed log-linear histogram: 16 buckets per power
// of two of nanoseconds, so a percentile is off by at most about 3% and the
// memory is constant however long the run.
const (
	subBits    = 4
	subBuckets = 1 << subBits
	numBuckets = (64-subBits)*subBuckets + subBuckets
)

type histogram struct {
	counts [numBuckets]atomic.Uint64
}

func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)*subBuckets + int(v>>shift) - subBuckets
}

// bucketMid returns a value in the middle of bucket i.
func bucketMid(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	m := uint64(i%subBuckets + subBuckets)
	return m<<shift + (uint64(1)<<shift)/2
}

// record adds one observation; safe for concurrent use.
func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))].Add(1)
}

// snapshot is a point-in-time copy of a histogram.
type snapshot [numBuckets]uint64

func (h *histogram) snapshot(s *snapshot) {
	for i := range h.counts {
		s[i] = h.counts[i].Load()
	}
}

// since returns the observations in s that are not in prev.
func (s *snapshot) since(prev *snapshot) snapshot {
	var d snapshot
	for i := range s {
		d[i] = s[i] - prev[i]
	}
	return d
}

// quantile returns the q-quantile (0 < q <= 1), or 0 with no observations.
func (s *snapshot) quantile(q float64) time.Duration {
	var total uint64
	for _, c := range s {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range s {
		if seen += c; seen >= rank {
			return time.Duration(bucketMid(i))
		}
	}
	return time.Duration(bucketMid(numBuckets - 1))
}
