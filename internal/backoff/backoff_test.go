package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestNextGrowsToTheCapWithJitter(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	// Each wait lies in the upper half of min·2^n, capped.
	for i, full := range []time.Duration{10, 20, 40, 80, 80, 80} {
		full *= time.Millisecond
		if d := b.Next(); d < full/2 || d > full {
			t.Fatalf("wait %d: %v, want within [%v, %v]", i, d, full/2, full)
		}
	}
	b.Reset()
	if d := b.Next(); d > 10*time.Millisecond {
		t.Fatalf("after Reset: %v, want at most Min", d)
	}
	var zero Backoff
	if d := zero.Next(); d < 50*time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("zero value's first wait %v, want within [50ms, 100ms]", d)
	}
}

func TestRetry(t *testing.T) {
	b := Backoff{Min: time.Microsecond, Max: time.Microsecond}
	n, told := 0, 0
	err := Retry(context.Background(), &b, func(context.Context) error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	}, func(error, time.Duration) { told++ })
	if err != nil || n != 3 || told != 2 {
		t.Fatalf("Retry = %v after %d tries, %d failures told; want nil after 3, 2 told", err, n, told)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Retry(ctx, &b, func(context.Context) error { return errors.New("down") }, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Retry with a cancelled context = %v, want context.Canceled", err)
	}
}
