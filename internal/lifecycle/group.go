package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Component is a long-running part of Pulse. Run serves until its context
// ends, finishes its in-flight work and returns.
type Component struct {
	Name string
	Run  func(ctx context.Context) error
}

// Run starts the components, each on its own goroutine, and waits until
// ctx ends or one of them returns. Then it stops the others one at a time in reverse order,
// waiting for each to return (at most drain) before stopping the next, so
// that a component never loses what it depends on while it drains. It
// returns the first error a component returned.
func Run(ctx context.Context, log *slog.Logger, drain time.Duration, comps ...Component) error {
	type running struct {
		cancel context.CancelFunc
		done   chan error
	}
	rs := make([]running, len(comps))
	exited := make(chan int, len(comps))
	for i, c := range comps {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		rs[i] = running{cancel: cancel, done: make(chan error, 1)}
		go func() {
			err := c.Run(cctx)
			rs[i].done <- err
			exited <- i
		}()
	}
	var first error
	results := make([]error, len(comps))
	finished := make([]bool, len(comps))
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case i := <-exited:
		results[i], finished[i] = <-rs[i].done, true
		if results[i] != nil {
			first = fmt.Errorf("%s: %w", comps[i].Name, results[i])
			log.Error("component failed, shutting down", "component", comps[i].Name, "err", results[i])
		} else {
			log.Warn("component stopped, shutting down", "component", comps[i].Name)
		}
	}
	for i := len(comps) - 1; i >= 0; i-- {
		rs[i].cancel()
		if finished[i] {
			continue
		}
		t := time.NewTimer(drain)
		began := time.Now()
		select {
		case err := <-rs[i].done:
			log.Debug("component stopped", "component", comps[i].Name, "took", time.Since(began))
			if err != nil && !errors.Is(err, context.Canceled) && first == nil {
				first = fmt.Errorf("%s: %w", comps[i].Name, err)
			}
		case <-t.C:
			log.Error("component did not stop in time", "component", comps[i].Name, "waited", drain)
			if first == nil {
				first = fmt.Errorf("%s did not stop within %s", comps[i].Name, drain)
			}
		}
		t.Stop()
	}
	return first
}
