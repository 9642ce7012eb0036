package stream

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/pipeline"
)

// The Windower's hooks of the task loop.

func (w *Windower) open(ctx context.Context, cl *kgo.Client) error {
	plan := w.cfg.Plan
	w.sources = w.sources[:0]
	for i, t := range plan.Source.Topics {
		n, err := partitionCounts(ctx, cl, []string{t})
		if err != nil {
			return err
		}
		for p := range n[0] {
			w.sources = append(w.sources, int32(i)<<16|p)
		}
	}
	var topics []string
	for _, o := range plan.Outputs {
		topics = append(topics, o.Topic)
	}
	var err error
	if w.outParts, err = partitionCounts(ctx, cl, topics); err != nil {
		return err
	}
	n, err := partitionCounts(ctx, cl, []string{pipeline.LateTopic(plan.Name)})
	if err != nil {
		return err
	}
	w.lateN = n[0]
	w.dropTasks()
	w.lastPurge = time.Now()
	return nil
}

// tick: nothing is due without records, the watermark moves with
// markers; but a round of finals left for the next transactions goes on
// at once.
func (w *Windower) tick() time.Duration {
	if w.behind {
		return time.Millisecond
	}
	return 0
}

// pollWait wakes the loop for the next live refresh rather than wait for
// the next records: what was folded is due then.
func (w *Windower) pollWait(now time.Time) time.Duration {
	if w.unpublished && w.livePer > 0 && w.cfg.Board != nil {
		return max(w.lastLive.Add(w.livePer).Sub(now), time.Millisecond)
	}
	return 0
}

func (w *Windower) prepare(ctx context.Context, cl *kgo.Client, fetches kgo.Fetches) error {
	return w.restoreFresh(ctx, cl, fetches)
}

// began clears the counts a session left when it failed mid-transaction.
func (w *Windower) began() {
	w.publishCounts(false)
	w.fired = 0
	w.txnBegan = time.Now()
}

func (w *Windower) polled(now time.Time) { w.publishLive(now, false) }

func (w *Windower) sync(parts map[string][]int32, _ time.Time) { w.syncAssignment(parts) }

func (w *Windower) drop() { w.dropTasks() }

// finish refreshes the live views first (the commit pauses the loop for a
// few round trips, and what was folded so far should not wait for it),
// then writes what fired and the state changes.
func (w *Windower) finish(ctx context.Context, sess *kgo.GroupTransactSession, inTxn bool, begin func() error) error {
	if !inTxn {
		if !w.behind {
			return nil
		}
		if err := begin(); err != nil { // finals left from the last transaction
			return err
		}
	}
	w.publishLive(time.Now(), true)
	w.commitStart = time.Now()
	w.fired += w.flush(ctx, sess)
	return nil
}

func (w *Windower) committed(ctx context.Context, cl *kgo.Client) {
	w.publishCounts(true)
	w.truncateChangelogs(ctx, cl)
	if time.Since(w.lastPurge) >= purgeEvery {
		w.purge(ctx, cl)
		w.lastPurge = time.Now()
	}
	if m := w.cfg.Metrics; m != nil {
		m.WindowResults.WithLabelValues(w.cfg.Plan.Name).Add(float64(w.fired))
		m.Checkpoints.WithLabelValues(w.cfg.Plan.Name).Observe(time.Since(w.commitStart).Seconds())
	}
}

// aborted drops every task: each restores from its changelog when its
// partition delivers again, and the session rewinds to the committed
// offsets.
func (w *Windower) aborted() {
	w.publishCounts(false)
	w.dropTasks()
}
