package sink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// TestFeedReadsRecreatedTopicFromStart stores offsets from an earlier
// life of a result topic, as when a Kafka client deleted it and Pulse
// created it again: the feed, resuming at them, skips the new topic's
// first records, until it is told the topic was created again; then it
// reads the topic from its start and stores every result.
func TestFeedReadsRecreatedTopicFromStart(t *testing.T) {
	const n = 30
	plan, opts := resultsBroker(t, n)
	o := plan.Outputs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, _ := openTest(t)
	// The old topic's offsets: 10 per partition.
	if err := Commit(ctx, store, nil, map[TopicPartition]int64{{o.Topic, 0}: 10, {o.Topic, 1}: 10}); err != nil {
		t.Fatal(err)
	}
	feed := NewFeed(FeedConfig{Store: store, Plans: []*pipeline.Plan{plan}, Opts: opts})
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- feed.Run(fctx) }()
	stored := func(want int) func() error {
		return func() error {
			rows := query(t, store, Query{Pipeline: plan.Name, Outputs: []*stream.Schema{stream.SchemaOf(&o)}, Limit: 10 * n})
			offs := offsetsOf(t, store)
			if len(rows) != want || offs[TopicPartition{o.Topic, 0}] != n/2 || offs[TopicPartition{o.Topic, 1}] != n/2 {
				return fmt.Errorf("%d rows stored, offsets %v; want %d rows and %d per partition", len(rows), offs, want, n/2)
			}
			return nil
		}
	}
	checkfor.CheckFor(t, 20*time.Second, 20*time.Millisecond, stored(n-20))
	feed.TopicRecreated(o.Topic)
	checkfor.CheckFor(t, 20*time.Second, 20*time.Millisecond, stored(n))
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
