package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/backoff"
	"github.com/pulsehq/pulse/internal/bus"
)

// kafkaSetup prepares the topics once Kafka answers, retrying with a
// capped backoff meanwhile, and then keeps them (bus.Keeper). The
// pipelines wait for it (after); /readyz reports on it (Health) from the
// start, so that a Pulse whose broker is down serves /healthz and says
// why it is not ready instead of exiting.
type kafkaSetup struct {
	brokers  string
	cl       *kgo.Client
	keeper   *bus.Keeper
	log      *slog.Logger
	attempt  time.Duration // bound of one try
	done     chan struct{} // closed once the topics exist
	lastErr  atomic.Pointer[string]
	attempts atomic.Int64
}

func newKafkaSetup(brokers []string, cl *kgo.Client, keeper *bus.Keeper, log *slog.Logger) *kafkaSetup {
	return &kafkaSetup{brokers: strings.Join(brokers, ","), cl: cl, keeper: keeper, log: log,
		attempt: 10 * time.Second, done: make(chan struct{})}
}

// Run prepares the topics, then keeps them until ctx ends.
func (k *kafkaSetup) Run(ctx context.Context) error {
	retry := backoff.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	var logged string
	err := backoff.Retry(ctx, &retry, func(ctx context.Context) error {
		k.attempts.Add(1)
		actx, cancel := context.WithTimeout(ctx, k.attempt)
		defer cancel()
		if _, err := k.keeper.Ensure(actx); err != nil {
			return err
		}
		return nil
	}, func(err error, wait time.Duration) {
		msg := err.Error()
		k.lastErr.Store(&msg)
		// One line per cause: the same failure every few seconds says
		// nothing new.
		if msg != logged {
			logged = msg
			k.log.Warn("Kafka does not answer; retrying until it does (the pipelines start then)",
				"brokers", k.brokers, "err", err, "next_try_in", wait.Round(time.Millisecond))
		}
	})
	if err != nil {
		return nil // ctx ended
	}
	if k.attempts.Load() > 1 {
		k.log.Info("Kafka answers; topics ready, starting the pipelines", "brokers", k.brokers, "tries", k.attempts.Load())
	}
	k.lastErr.Store(nil)
	close(k.done)
	return k.keeper.Run(ctx)
}

// after returns run, started once the topics exist.
func (k *kafkaSetup) after(run func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-k.done:
		}
		return run(ctx)
	}
}

func (k *kafkaSetup) ready() bool {
	select {
	case <-k.done:
		return true
	default:
		return false
	}
}

// Health reports whether Kafka answers: before the setup succeeded, why
// it failed; afterwards, a metadata request.
func (k *kafkaSetup) Health(ctx context.Context) error {
	if !k.ready() {
		if e := k.lastErr.Load(); e != nil {
			return fmt.Errorf("cannot reach Kafka at %s (check --brokers and that the cluster runs; retrying): %s", k.brokers, *e)
		}
		return fmt.Errorf("connecting to Kafka at %s", k.brokers)
	}
	if err := bus.Ping(ctx, k.cl); err != nil {
		return fmt.Errorf("no answer from Kafka at %s: %w", k.brokers, err)
	}
	return nil
}

// topicsHealth reports whether the topics exist.
func (k *kafkaSetup) topicsHealth(ctx context.Context) error {
	if !k.ready() {
		return errors.New("not created yet: waiting for Kafka")
	}
	return k.keeper.Health(ctx)
}
