package sink

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// TestEventsRowsOfOneMillisecondAllStored runs an events output through
// both stages against an in-process broker and its results through the
// feed into SQLite. Two events of key api at the same millisecond are two
// stored rows, told apart by their event_id (the source record's
// topic/partition/offset), not one row the second overwrote; web at that
// millisecond is a third. A key query finds both api rows. Reading the
// result topic again from its start (a feed that lost its offsets, or a
// replay) writes the same identities: still three rows.
func TestEventsRowsOfOneMillisecondAllStored(t *testing.T) {
	plan, err := pipeline.Parse("ev.yaml", []byte(`name: ev
source: {topic: ev_in, key: service, time: {field: ts}}
event_time: {max_out_of_orderness: 1s, idle_timeout: 1s}
outputs:
  - name: errors
    group_by: [service]
    events: {fields: {latency_ms: float64}}
`))
	if err != nil {
		t.Fatal(err)
	}
	o := &plan.Outputs[0]
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	src := plan.Source.Topics[0]
	repart, changelog := stream.InternalTopics(plan)
	if err := bus.EnsureTopics(ctx, cl, 1, src); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureTopics(ctx, cl, 2, append([]string{o.Topic, pipeline.LateTopic(plan.Name), pipeline.DLQTopic(src)}, repart...)...); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureTopicsWith(ctx, cl, 2, bus.Compacted, changelog...); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for _, ev := range []string{
		`{"service":"api","ts":"2026-03-01T12:00:00.123Z","latency_ms":100}`,
		`{"service":"api","ts":"2026-03-01T12:00:00.123Z","latency_ms":200}`,
		`{"service":"web","ts":"2026-03-01T12:00:00.123Z","latency_ms":300}`,
	} {
		recs = append(recs, &kgo.Record{Topic: src, Value: []byte(ev)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cfg := stream.StageConfig{Plan: plan, Cluster: stream.Cluster{Opts: opts, Node: "test", SessionTimeout: 6 * time.Second}, CommitEvery: 100 * time.Millisecond}
	store, _ := openTest(t)
	schema := stream.SchemaOf(o)
	rows := func(key []string) []Row {
		return query(t, store, Query{Pipeline: plan.Name, Outputs: []*stream.Schema{schema}, Key: key})
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// runFeed runs a feed into store until the returned func stops it.
	runFeed := func() (stop func()) {
		fctx, cancel := context.WithCancel(runCtx)
		done := make(chan struct{})
		feed := NewFeed(FeedConfig{Store: store, Plans: []*pipeline.Plan{plan}, Opts: opts})
		go func() {
			defer close(done)
			if err := feed.Run(fctx); err != nil {
				t.Errorf("feed: %v", err)
			}
		}()
		return func() { cancel(); <-done }
	}
	for _, run := range []func(context.Context) error{stream.NewWindower(cfg).Run, stream.NewShuffler(cfg).Run} {
		wg.Go(func() {
			if err := run(runCtx); err != nil {
				t.Errorf("stage: %v", err)
			}
		})
	}
	stopFeed := runFeed()
	checkfor.CheckFor(t, 40*time.Second, 50*time.Millisecond, func() error {
		if n := len(rows(nil)); n != 3 {
			return fmt.Errorf("%d rows stored, want 3", n)
		}
		return nil
	})
	want := map[string]float64{"api/ev_in/0/0": 100, "api/ev_in/0/1": 200, "web/ev_in/0/2": 300}
	check := func(when string) {
		t.Helper()
		got := rows(nil)
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows stored, want %d: %s", when, len(got), len(want), fmtRows(got))
		}
		for _, r := range got {
			id := fmt.Sprintf("%s/%s", r.Key[0], r.Key[len(r.Key)-1])
			if v, ok := want[id]; !ok || !slices.Equal(r.GroupBy, []string{"service", pipeline.ColEventID}) || r.Values[0].Num != v {
				t.Errorf("%s: row %q of %q = %v, want one of %v", when, r.Key, r.GroupBy, r.Values, want)
			}
		}
		if api := rows([]string{"api"}); len(api) != 2 {
			t.Errorf("%s: key api: %s, want its two rows", when, fmtRows(api))
		}
	}
	check("stored")

	// Every result again, from the result topic's start.
	stopFeed()
	read := offsetsOf(t, store)
	a := store.Appender(ctx)
	for tp := range read {
		a.SetOffset(tp, 0)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	stopFeed = runFeed()
	checkfor.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if offs := offsetsOf(t, store); !maps.Equal(offs, read) {
			return fmt.Errorf("offsets %v, want the feed to read up to %v again", offs, read)
		}
		return nil
	})
	stopFeed()
	stop()
	wg.Wait()
	check("read again")
}
