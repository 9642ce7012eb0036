package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restore reads the changelog partition of each task from its start to
// its last stable offset and applies it to the task's engine. It reads
// committed records only, and keeps the transactions' control records to
// know where it is: the last offsets of a partition are commit markers.
// It logs its progress every restoreLogEvery and gives up, naming the
// partition it was reading, after StageConfig.RestoreTimeout.
func (w *Windower) restore(ctx context.Context, cl *kgo.Client, tasks []*task) error {
	start := time.Now()
	defer w.prog.restore("")
	byTP := map[string]*task{}
	var topics []string
	seen := map[string]bool{}
	for _, t := range tasks {
		topic := ChangelogTopic(w.cfg.Plan, w.cfg.Plan.Outputs[t.out].Name)
		byTP[tpKey(topic, t.part)] = t
		if !seen[topic] {
			seen[topic] = true
			topics = append(topics, topic)
		}
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list changelog end offsets: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list changelog start offsets: %w", err)
	}
	end := map[string]int64{}
	assign := map[string]map[int32]kgo.Offset{}
	for k, t := range byTP {
		topic := ChangelogTopic(w.cfg.Plan, w.cfg.Plan.Outputs[t.out].Name)
		e, ok := ends.Lookup(topic, t.part)
		if !ok || e.Err != nil {
			return fmt.Errorf("changelog %s partition %d: no end offset: %v", topic, t.part, e.Err)
		}
		s, _ := starts.Lookup(topic, t.part)
		if e.Offset <= s.Offset {
			continue // empty
		}
		end[k] = e.Offset
		if assign[topic] == nil {
			assign[topic] = map[int32]kgo.Offset{}
		}
		assign[topic][t.part] = kgo.NewOffset().At(s.Offset)
	}
	var records int
	if len(end) > 0 {
		total := len(end)
		pos := map[string]int64{} // next offset to read, per partition left
		for k := range end {
			t := byTP[k]
			pos[k] = assign[ChangelogTopic(w.cfg.Plan, w.cfg.Plan.Outputs[t.out].Name)][t.part].EpochOffset().Offset
		}
		status := func() string {
			return fmt.Sprintf("%d of %d changelog partitions left, %s records read; %s", len(end), total, groupDigits(int64(records)), behindmost(end, pos))
		}
		rctx, cancel := context.WithTimeout(ctx, w.cfg.RestoreTimeout)
		defer cancel()
		nextLog := time.Now().Add(restoreLogEvery)
		rc, err := kgo.NewClient(append(append([]kgo.Opt{}, w.cfg.Cluster.Opts...),
			kgo.ClientID("pulse-"+w.cfg.Plan.Name+"-restore"),
			kgo.ConsumePartitions(assign),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(),
			kgo.FetchMaxBytes(64<<20),
		)...)
		if err != nil {
			return fmt.Errorf("restore client: %w", err)
		}
		defer rc.Close()
		now := time.Now().UnixMilli()
		for len(end) > 0 {
			pctx, pcancel := context.WithDeadline(rctx, nextLog)
			fetches := rc.PollFetches(pctx)
			pcancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if rctx.Err() != nil {
				return fmt.Errorf("restore of %d window tasks of pipeline %s did not finish within %s (raise --restore-timeout for a changelog this long): %s",
					len(tasks), w.cfg.Plan.Name, w.cfg.RestoreTimeout, status())
			}
			if !time.Now().Before(nextLog) {
				w.cfg.Logger.Info("restoring window tasks", "pipeline", w.cfg.Plan.Name, "tasks", len(tasks),
					"progress", status(), "took", time.Since(start).Round(time.Second))
				nextLog = time.Now().Add(restoreLogEvery)
			}
			var ferr error
			fetches.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					ferr = fmt.Errorf("read changelog %s partition %d: %w", t, p, err)
				}
			})
			if ferr != nil {
				return ferr
			}
			var rerr error
			fetches.EachRecord(func(rec *kgo.Record) {
				k := tpKey(rec.Topic, rec.Partition)
				e, ok := end[k]
				if !ok || rerr != nil || rec.Offset >= e {
					return
				}
				pos[k] = rec.Offset + 1
				if !rec.Attrs.IsControl() {
					records++
					if err := w.restoreRecord(byTP[k], rec.Key, rec.Value, now); err != nil {
						rerr = &fatalError{fmt.Errorf("changelog %s partition %d offset %d: %w", rec.Topic, rec.Partition, rec.Offset, err)}
						return
					}
				}
				if rec.Offset+1 >= e {
					delete(end, k)
				}
			})
			if rerr != nil {
				return rerr
			}
			w.prog.restore(status())
		}
	}
	open := 0
	for _, t := range tasks {
		open += t.op.OpenWindows()
	}
	w.cfg.Logger.Info("window tasks restored", "pipeline", w.cfg.Plan.Name, "tasks", len(tasks),
		"records", records, "open_windows", open, "took", time.Since(start).Round(time.Millisecond))
	if m := w.cfg.Metrics; m != nil {
		m.RestoredRecords.WithLabelValues(w.cfg.Plan.Name).Add(float64(records))
	}
	return nil
}

// restoreLogEvery is how often a restore in progress logs how far it got.
const restoreLogEvery = 5 * time.Second

// behindmost names the partition left with the most records to read: its
// topic, partition, next offset and end.
func behindmost(end, pos map[string]int64) string {
	var worst string
	for k := range end {
		if worst == "" || end[k]-pos[k] > end[worst]-pos[worst] || (end[k]-pos[k] == end[worst]-pos[worst] && k < worst) {
			worst = k
		}
	}
	if worst == "" {
		return "done"
	}
	return fmt.Sprintf("%s at offset %d of %d", worst, pos[worst], end[worst])
}

// restoreRecord applies one changelog record, read in offset order, to t.
func (w *Windower) restoreRecord(t *task, key, value []byte, now int64) error {
	if isSnapshotStart(key) {
		// The snapshot holds the whole state: start over, so that what
		// came before it (or was deleted under this read, which then
		// jumps to the snapshot) cannot leak in.
		w.closeOperator(t.op)
		t.op, t.sinceSnap = w.newOperator(t.out), 0
	}
	// What a restore reads counts toward the next snapshot: a long
	// changelog gets one soon.
	t.sinceSnap++
	return t.op.RestoreChange(key, value, now)
}
