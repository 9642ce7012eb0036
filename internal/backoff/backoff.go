package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the wait before the next retry. The zero value waits from
// 100 ms up to 10 s.
type Backoff struct {
	// Min is the first wait (default 100 ms), Max the longest (default
	// 10 s).
	Min, Max time.Duration
	fails    int
}

// Next returns how long to wait after one more failure.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi <= 0 {
		hi = 10 * time.Second
	}
	hi = max(hi, lo)
	d := lo
	for i := 0; i < b.fails && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	b.fails++
	// Equal jitter: half the wait, plus up to as much again.
	half := d / 2
	return half + rand.N(d-half+1)
}

// Reset makes the next wait the shortest again: call it after a success.
func (b *Backoff) Reset() { b.fails = 0 }

// Wait sleeps for the next wait, or until ctx ends; it reports whether the
// full wait passed.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Retry calls fn until it returns nil or ctx ends, waiting with b between
// tries; failed, when not nil, is told each failure and the wait before
// the next try. It returns nil once fn succeeded, else ctx's error.
func Retry(ctx context.Context, b *Backoff, fn func(context.Context) error, failed func(err error, wait time.Duration)) error {
	for {
		err := fn(ctx)
		if err == nil {
			b.Reset()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := b.Next()
		if failed != nil {
			failed(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
