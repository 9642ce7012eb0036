package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// progress is what a stage worker tells /readyz: whether its session
// runs, since when input has waited without a commit, what a restore in
// progress has read, and the error the last session ended with. Its
// methods are cheap and safe to call from any goroutine.
type progress struct {
	stall   time.Duration // how long input may wait without a commit
	now     func() time.Time
	running atomic.Bool
	// waitSince is when input was first seen since the last commit (unix
	// ms; 0: none waits); polled counts the records read since then, lag
	// those the stage has not read yet.
	waitSince atomic.Int64
	polled    atomic.Int64
	lag       atomic.Int64
	restoring atomic.Pointer[string]
	lastErr   atomic.Pointer[string]
}

func newProgress(stall time.Duration) *progress {
	if stall <= 0 {
		stall = defaultStall
	}
	return &progress{stall: stall, now: time.Now}
}

// defaultStall is how long a stage may hold input without committing
// before it is not ready, unless StageConfig.StallTimeout says otherwise.
const defaultStall = 30 * time.Second

// started marks the session running.
func (p *progress) started() {
	p.polled.Store(0)
	p.running.Store(true)
}

// stopped marks the session ended, with err (nil: a clean stop).
func (p *progress) stopped(err error) {
	p.running.Store(false)
	p.restoring.Store(nil)
	if err != nil {
		s := err.Error()
		p.lastErr.Store(&s)
	}
}

// read records that the stage read n more records. The wait is timed
// from the first input after the last commit, and survives a failed
// session: a stage that fails in a loop is stalled.
func (p *progress) read(n int) {
	if n <= 0 {
		return
	}
	p.polled.Add(int64(n))
	p.waitSince.CompareAndSwap(0, p.now().UnixMilli())
}

// behind records how many records wait unread in the stage's partitions.
func (p *progress) behind(n int64) {
	p.lag.Store(n)
	if n > 0 {
		p.waitSince.CompareAndSwap(0, p.now().UnixMilli())
	}
}

// rewound records an aborted transaction: its records are read again.
func (p *progress) rewound() { p.polled.Store(0) }

// committed records a commit: what was read is done, the last error is
// over, and records still unread wait from now on.
func (p *progress) committed() {
	p.polled.Store(0)
	p.lastErr.Store(nil)
	if p.lag.Load() > 0 {
		p.waitSince.Store(p.now().UnixMilli())
	} else {
		p.waitSince.Store(0)
	}
}

// restore records what a restore in progress has read ("" when done).
func (p *progress) restore(detail string) {
	if detail == "" {
		p.restoring.Store(nil)
		return
	}
	p.restoring.Store(&detail)
}

// health returns nil while the stage runs and commits what it reads
// within the stall bound; an idle stage is ready.
func (p *progress) health(context.Context) error {
	var detail string
	if r := p.restoring.Load(); r != nil {
		detail += "; restoring: " + *r
	}
	if e := p.lastErr.Load(); e != nil {
		detail += "; last error: " + *e
	}
	if since := p.waitSince.Load(); since != 0 {
		if d := p.now().Sub(time.UnixMilli(since)); d > p.stall {
			waiting := "records arrived"
			if n := p.polled.Load() + p.lag.Load(); n > 0 {
				waiting = groupDigits(n) + " records wait"
			}
			return fmt.Errorf("no commit for %s while %s%s", d.Round(time.Second), waiting, detail)
		}
	}
	if !p.running.Load() {
		if detail == "" {
			return errors.New("starting")
		}
		return errors.New("starting again" + detail)
	}
	return nil
}

// writeFailed names the topic and partition of a failed write.
func writeFailed(r *kgo.Record, err error) error {
	return fmt.Errorf("write to %s partition %d: %w", r.Topic, r.Partition, err)
}

// staleTopic returns an error when a transaction failed because a topic
// it wrote to is missing or was created again: the session's client
// keeps writing with the old topic's id, so only a new session (with
// fresh metadata) can write to the new topic.
func staleTopic(fail *atomic.Pointer[error]) error {
	p := fail.Load()
	if p == nil || !(errors.Is(*p, kerr.UnknownTopicID) || errors.Is(*p, kerr.UnknownTopicOrPartition)) {
		return nil
	}
	return fmt.Errorf("%w (the topic was deleted or created again: the session starts again)", *p)
}

// groupDigits writes n with thousands separators: 1,234,567.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
