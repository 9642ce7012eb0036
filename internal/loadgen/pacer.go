package loadgen

import (
	"context"
	"sync"
	"time"
)

// pacer hands out whole batches at a steady rate: a token bucket whose
// tokens are batches. Each caller reserves the next slot and sleeps until
// it is due; a sender that fell behind may catch up by at most burst.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration // time per batch; 0 means unpaced
	burst    time.Duration
	next     time.Time
	deadline time.Time // zero means none
}

func newPacer(rate float64, batch, burst int, start time.Time, duration time.Duration) *pacer {
	p := &pacer{next: start}
	if rate > 0 {
		p.interval = time.Duration(float64(batch) / rate * float64(time.Second))
		p.interval = max(p.interval, 1)
		p.burst = time.Duration(burst) * p.interval
	}
	if duration > 0 {
		p.deadline = start.Add(duration)
	}
	return p
}

// wait blocks until the caller may send one batch. It reports false when
// ctx ended or the run's duration is over.
func (p *pacer) wait(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	now := time.Now()
	p.mu.Lock()
	slot := p.next
	if p.interval > 0 {
		if oldest := now.Add(-p.burst); slot.Before(oldest) {
			slot = oldest
		}
		p.next = slot.Add(p.interval)
	} else {
		slot = now
	}
	p.mu.Unlock()
	if !p.deadline.IsZero() && !slot.Before(p.deadline) {
		return false
	}
	d := slot.Sub(now)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
