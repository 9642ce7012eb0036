package stream

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// sideDone counts a side record (result, late event, dead letter) into the
// current checkpoint epoch and returns its produce callback, which
// remembers the first failure. A checkpoint's commit waits for the records
// of its own epoch only, not for those produced while it commits.
func (p *Processor) sideDone(topic string) func(*kgo.Record, error) {
	wg := p.epoch
	wg.Add(1)
	return func(_ *kgo.Record, err error) {
		if err != nil {
			err = fmt.Errorf("write to %s: %w", topic, err)
			p.sideErr.CompareAndSwap(nil, &err)
		}
		wg.Done()
	}
}

// waitSide waits until every record counted in wg was acknowledged.
func waitSide(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkpoint captures the results fired since the last checkpoint, the
// engine's state and the offsets after the last processed record, and
// commits them in the background while processing goes on. At most one
// commit is in flight: checkpoint first waits for the previous one and
// returns its error.
func (p *Processor) checkpoint(ctx context.Context) error {
	if err := p.waitCommit(); err != nil {
		return err
	}
	start := time.Now()
	p.produceResults()
	offsets := make(map[string]int64, len(p.next))
	for k, v := range p.next {
		offsets[k] = v
	}
	cp := Checkpoint{Offsets: offsets, State: p.engine.Snapshot()}
	var keep []Result
	for _, r := range p.pending {
		if p.stored[r.Output] {
			keep = append(keep, r)
		}
	}
	fired := len(p.pending)
	p.pending = p.pending[:0]
	side := p.epoch
	p.epoch = &sync.WaitGroup{}
	done := make(chan error, 1)
	p.inflight = done
	go func() {
		// A commit finishes even when shutdown starts meanwhile.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		done <- p.commit(cctx, side, keep, cp, fired, start)
	}()
	return nil
}

// waitCommit waits for the commit in flight, if any.
func (p *Processor) waitCommit() error {
	if p.inflight == nil {
		return nil
	}
	err := <-p.inflight
	p.inflight = nil
	return err
}

func (p *Processor) commit(ctx context.Context, side *sync.WaitGroup, results []Result, cp Checkpoint, fired int, start time.Time) error {
	// Side records (results, late events, dead letters) must be stored
	// before the offsets that skip past them are committed.
	if err := waitSide(ctx, side); err != nil {
		return fmt.Errorf("wait for side topics of %s: %w", p.cfg.Plan.Name, err)
	}
	if err := p.sideErr.Load(); err != nil {
		// Not committing keeps the offsets before the records whose copy
		// failed, so a restart sends them again: nothing is lost.
		return fmt.Errorf("pipeline %s: %w", p.cfg.Plan.Name, *err)
	}
	if err := p.cfg.Store.Commit(ctx, p.cfg.Plan.Name, results, cp); err != nil {
		return err
	}
	if m := p.cfg.Metrics; m != nil {
		m.WindowResults.WithLabelValues(p.cfg.Plan.Name).Add(float64(fired))
		m.Checkpoints.WithLabelValues(p.cfg.Plan.Name).Observe(time.Since(start).Seconds())
	}
	return nil
}

// produceResults writes the pending final results to their outputs'
// topics as JSON, keyed by the group key.
func (p *Processor) produceResults() {
	for i := range p.pending {
		r := &p.pending[i]
		topic := p.outTopic[r.Output]
		if topic == "" {
			continue
		}
		p.cfg.Client.Produce(context.Background(), &kgo.Record{
			Topic: topic, Key: []byte(joinKey(r.Key)), Value: AppendResultJSON(nil, r),
		}, p.sideDone(topic))
	}
}
