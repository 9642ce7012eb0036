package stream

import (
	"sync/atomic"
	"testing"
)

// TestParallel: parallel calls fn once for every index and returns after
// the last call.
func TestParallel(t *testing.T) {
	for _, n := range []int{0, 1, 2, 5, 100} {
		calls := make([]atomic.Int32, n)
		parallel(n, func(i int) { calls[i].Add(1) })
		for i := range calls {
			if c := calls[i].Load(); c != 1 {
				t.Fatalf("n=%d: fn(%d) called %d times", n, i, c)
			}
		}
	}
}
