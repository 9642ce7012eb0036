package sink

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A shared feed (FeedConfig.Shared) writes a database that other Pulse
// processes write too: the processes form one consumer group per
// database (named by Claimer.Instance), so that each result partition is
// read by one of them at a time. A process claims the partitions the
// group assigns it before it reads them (Claimer.Claim, from the
// AdjustFetchOffsetsFn hook, which also seeks to the claimed offsets),
// and fences every batch with its claims: once another process has
// claimed a partition, the batches of the one that lost it fail with
// ErrFenced and write nothing, however long it was paused.

// claims holds the epochs of the partitions this process has claimed.
type claims struct {
	mu     sync.Mutex
	epochs map[TopicPartition]int64
}

func (c *claims) set(epochs map[TopicPartition]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epochs == nil {
		c.epochs = map[TopicPartition]int64{}
	}
	for tp, e := range epochs {
		c.epochs[tp] = e
	}
}

func (c *claims) drop(parts map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for t, ps := range parts {
		for _, p := range ps {
			delete(c.epochs, TopicPartition{t, p})
		}
	}
}

func (c *claims) epoch(tp TopicPartition) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.epochs[tp]
	return e, ok
}

// groupOpts returns the client options of a shared feed of topics.
func (f *Feed) groupOpts(ctx context.Context, cl Claimer, topics []string) ([]kgo.Opt, error) {
	inst, err := cl.Instance(ctx)
	if err != nil {
		return nil, err
	}
	f.claims = &claims{}
	opts := []kgo.Opt{
		kgo.ConsumerGroup("pulse.sink." + inst),
		kgo.ConsumeTopics(topics...),
		kgo.DisableAutoCommit(), // the offsets live in the database
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AdjustFetchOffsetsFn(func(ctx context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
			var tps []TopicPartition
			for t, ps := range assigned {
				for p := range ps {
					tps = append(tps, TopicPartition{t, p})
				}
			}
			offsets, epochs, err := cl.Claim(ctx, tps)
			if err != nil {
				// The group joins again and the claim is tried again.
				f.claimWarn.Error("claim", "claiming result partitions failed; the sink joins its group again", "err", err)
				return nil, fmt.Errorf("claim result partitions: %w", err)
			}
			f.claims.set(epochs)
			for _, tp := range tps {
				if next, ok := offsets[tp]; ok {
					assigned[tp.Topic][tp.Partition] = kgo.NewOffset().At(next).WithEpoch(-1)
				} else {
					assigned[tp.Topic][tp.Partition] = kgo.NewOffset().AtStart()
				}
			}
			f.cfg.Logger.Info("result partitions claimed", "sink", f.name, "partitions", len(tps))
			return assigned, nil
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { f.claims.drop(lost) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { f.claims.drop(lost) }),
	}
	if st := f.cfg.SessionTimeout; st > 0 {
		opts = append(opts, kgo.SessionTimeout(st), kgo.HeartbeatInterval(st/5), kgo.RebalanceTimeout(st))
	}
	return opts, nil
}

// claimWarnEvery bounds the log lines of failed claims.
const claimWarnEvery = 10 * time.Second
