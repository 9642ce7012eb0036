package stream

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// purgeEvery is how often the window stage deletes the repartition records
// it has committed past.
const purgeEvery = 30 * time.Second

// purge deletes, in the repartition partitions this member owns, the
// records before its committed offsets: once the window stage committed
// past them, no one reads them again (Kafka Streams purges its
// repartition topics the same way). Without it the repartition topics
// would keep every event for the broker's whole retention.
func (w *Windower) purge(ctx context.Context, cl *kgo.Client) {
	var offs kadm.Offsets
	for topic, parts := range cl.CommittedOffsets() {
		if _, ok := w.outIdx[topic]; !ok {
			continue
		}
		for p, eo := range parts {
			if eo.Offset > 0 {
				offs.AddOffset(topic, p, eo.Offset, -1)
			}
		}
	}
	if err := deleteRecords(ctx, cl, offs); err != nil {
		// The next purge tries again; nothing depends on it but disk.
		w.cfg.Logger.Warn("purge repartition records", "pipeline", w.cfg.Plan.Name, "err", err)
	}
}

// truncateChangelogs deletes, in the changelog partitions of the tasks
// that just committed a snapshot, the records before it: the snapshot
// holds the whole state, so restoring reads it and what follows. Changelog
// topics are created with cleanup.policy "compact,delete" (and no
// retention limit) because Kafka refuses DeleteRecords on compact-only
// topics; compaction still bounds a topic whose records cannot be deleted.
//
// A task whose operator cleans its changelog (logCleaner) has its records
// before the oldest generation a restore needs deleted, once they are at
// least half as many as the task holds groups (and snapshotMin): one
// request deletes many records.
func (w *Windower) truncateChangelogs(ctx context.Context, cl *kgo.Client) {
	var offs kadm.Offsets
	for _, t := range w.tasks {
		at := t.snapAt.Swap(-1)
		if c, ok := t.op.(logCleaner); ok {
			at = t.cleanedTo(c.LogStart())
			if at-t.truncated < int64(max(t.op.Groups()/2, snapshotMin)) {
				continue
			}
			t.truncated = at
		}
		if at > 0 {
			offs.AddOffset(ChangelogTopic(w.cfg.Plan, w.cfg.Plan.Outputs[t.out].Name), t.part, at, -1)
		}
	}
	err := deleteRecords(ctx, cl, offs)
	if err == nil || ctx.Err() != nil || w.truncWarned {
		// At shutdown: the first snapshot after the restart deletes them.
		return
	}
	// Nothing depends on it but disk and restore time: warn once.
	w.truncWarned = true
	if errors.Is(err, kerr.PolicyViolation) {
		w.cfg.Logger.Warn("cannot delete changelog records before a snapshot; compaction keeps the changelog bounded instead (set cleanup.policy=compact,delete on the changelog topics to let Pulse delete them)",
			"pipeline", w.cfg.Plan.Name, "err", err)
		return
	}
	w.cfg.Logger.Warn("cannot delete changelog records before a snapshot; later snapshots try again",
		"pipeline", w.cfg.Plan.Name, "err", err)
}

// cleanedTo forgets the starts of the generations before start and
// returns the offset start begins at (-1: not known, as for the
// generation of a restore).
func (t *task) cleanedTo(start uint64) int64 {
	i := 0
	for i < len(t.gens) && t.gens[i].gen < start {
		i++
	}
	t.gens = append(t.gens[:0], t.gens[i:]...)
	if len(t.gens) == 0 || t.gens[0].gen != start {
		return -1
	}
	return t.gens[0].at.Load()
}

// deleteRecords deletes the records before offs (DeleteRecords), if any.
func deleteRecords(ctx context.Context, cl *kgo.Client, offs kadm.Offsets) error {
	if len(offs) == 0 {
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).DeleteRecords(dctx, offs)
	if err != nil {
		return err
	}
	return resp.Error()
}
