package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Breaker turns ingest away at once while the broker cannot take writes,
// instead of letting every request wait --produce-timeout for it. It opens
// when the producer fails to connect to a broker or a write fails for a
// broker reason (timeout, connection, a retriable broker error) and no
// write or probe succeeded for a while (Window); while it is open its Gate
// answers 503 naming the broker, and Run probes the cluster until it
// answers, which closes it. Requests already being written keep waiting
// for their acknowledgement as before: nothing accepted is given up.
//
// A Breaker is a kgo hook (kgo.WithHooks) of the client ingest produces
// with, so that it learns of failed connections and requests as they
// happen.
type Breaker struct {
	// Window is how long failures must go on without a success before the
	// breaker opens (default 1 s); one failed dial among successful writes,
	// as with one of several brokers down, does not open it.
	Window time.Duration
	// ProbeEvery is the pause between probes while open (default 500 ms).
	ProbeEvery time.Duration

	mu     sync.Mutex
	lastOK time.Time
	open   atomic.Pointer[Refusal]
	wake   chan struct{}
	// OnChange, when set before use, is called with true when the breaker
	// opens and false when it closes, with the cause.
	OnChange func(open bool, cause string)
}

// NewBreaker returns a closed breaker that has just seen a success.
func NewBreaker() *Breaker {
	return &Breaker{Window: time.Second, ProbeEvery: 500 * time.Millisecond, lastOK: time.Now(), wake: make(chan struct{}, 1)}
}

// Gate refuses requests while the breaker is open.
func (b *Breaker) Gate() *Refusal { return b.open.Load() }

// OnBrokerConnect implements kgo.HookBrokerConnect: a failed dial is a
// failure.
func (b *Breaker) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		b.failure(net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port)), err)
	}
}

// OnBrokerE2E implements kgo.HookBrokerE2E: a request that could not be
// written or whose answer could not be read (the connection broke, or
// timed out) is a failure.
func (b *Breaker) OnBrokerE2E(meta kgo.BrokerMetadata, _ int16, e2e kgo.BrokerE2E) {
	if err := e2e.Err(); err != nil {
		b.failure(net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port)), err)
	}
}

// observe records the outcome of a write: err nil is a success.
func (b *Breaker) observe(err error) {
	if err == nil {
		b.success()
		return
	}
	if brokerFault(err) {
		b.failure("", err)
	}
}

func (b *Breaker) success() {
	b.mu.Lock()
	b.lastOK = time.Now()
	was := b.open.Swap(nil)
	b.mu.Unlock()
	if was != nil && b.OnChange != nil {
		b.OnChange(false, "")
	}
}

func (b *Breaker) failure(addr string, err error) {
	b.mu.Lock()
	if b.open.Load() != nil || time.Since(b.lastOK) < b.Window {
		b.mu.Unlock()
		return
	}
	where := "the Kafka broker"
	if addr != "" {
		where += " at " + addr
	}
	r := &Refusal{Code: http.StatusServiceUnavailable, RetryAfter: 2 * time.Second,
		Reason: fmt.Sprintf("broker unreachable: %s does not take writes (%v); nothing of this request was stored, send it again after the Retry-After delay", where, err)}
	b.open.Store(r)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	if b.OnChange != nil {
		b.OnChange(true, r.Reason)
	}
}

// Run probes the cluster with ping while the breaker is open, closing it
// at the first answer, until ctx ends.
func (b *Breaker) Run(ctx context.Context, ping func(context.Context) error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.wake:
		}
		for b.open.Load() != nil && ctx.Err() == nil {
			pctx, cancel := context.WithTimeout(ctx, max(b.ProbeEvery, time.Second))
			err := ping(pctx)
			cancel()
			if err == nil {
				b.success()
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(b.ProbeEvery):
			}
		}
	}
}

// brokerFault reports whether a produce error means the broker cannot
// take writes, rather than that a record was refused for itself.
func brokerFault(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrRecordTimeout) ||
		errors.Is(err, kgo.ErrRecordRetries) || errors.As(err, &ne) || kerr.IsRetriable(err)
}
