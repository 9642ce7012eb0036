package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// TestJoinStages runs both stages of a join pipeline against an
// in-process broker: the window stage loads the table before its first
// event, the results in the output topic carry the table's row, an event
// without a row is dropped and counted, and a table update the stage's
// table has applied is seen by the events processed after it, while the
// results written before keep the old value.
func TestJoinStages(t *testing.T) {
	plan := testPlan(t, strings.Replace(joinPipeline, "MISSING", "drop", 1))
	opts, cl, ctx := testBroker(t)
	src := plan.Source.Topics[0]
	repart, changelog := InternalTopics(plan)
	topics := append([]string{src, pipeline.DLQTopic(src), pipeline.LateTopic(plan.Name), plan.Outputs[0].Topic}, repart...)
	if err := bus.EnsureTopics(ctx, cl, 2, append(topics, changelog...)...); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureTopicsWith(ctx, cl, 2, map[string]string{"cleanup.policy": "compact"}, "merchants"); err != nil {
		t.Fatal(err)
	}
	produce := func(recs ...*kgo.Record) {
		t.Helper()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tx := func(id, merchant string) *kgo.Record {
		return &kgo.Record{Topic: src, Key: []byte(id), Value: fmt.Appendf(nil, `{"tx_id":%q,"at":1000,"amount":2.5,"merchant_id":%q}`, id, merchant)}
	}
	produce(tableRecord("m1", `{"name":"Books","risk":0.5}`))

	m := telemetry.New()
	cfg := StageConfig{Plan: plan, Cluster: Cluster{Opts: opts, Node: "test", SessionTimeout: 6 * time.Second}, Metrics: m,
		CommitEvery: 50 * time.Millisecond}
	win := NewWindower(cfg)
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, r := range []func(context.Context) error{win.Run, NewShuffler(cfg).Run} {
		wg.Go(func() {
			if err := r(runCtx); err != nil {
				t.Errorf("stage: %v", err)
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	produce(tx("t1", "m1"), tx("t2", "m9"))
	want := map[string]map[string]any{
		"t1": {"amount": 2.5, "merchant_id": "m1", "name": "Books", "risk": 0.5},
	}
	waitResults(t, opts, plan.Outputs[0].Topic, want)

	produce(tableRecord("m1", `{"name":"Books & Co","risk":0.75}`))
	tbl := win.tables["enriched"]
	checkfor.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if r, ok := tbl.Lookup("m1"); !ok || r[0].Str != "Books & Co" {
			return fmt.Errorf("the stage's table has m1 = %v", r)
		}
		return nil
	})
	produce(tx("t3", "m1"))
	want["t3"] = map[string]any{"amount": 2.5, "merchant_id": "m1", "name": "Books & Co", "risk": 0.75}
	waitResults(t, opts, plan.Outputs[0].Topic, want)
	if got := testutil.ToFloat64(m.JoinUnmatched.WithLabelValues(plan.Name, "enriched", "dropped")); got != 1 {
		t.Errorf("%v events dropped, want 1", got)
	}
}

// waitResults waits until the committed results of topic are exactly
// want: the value columns by key.
func waitResults(t *testing.T, opts []kgo.Opt, topic string, want map[string]map[string]any) {
	t.Helper()
	checkfor.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		got := readJoinResults(t, opts, topic)
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("results %v, want %v", got, want)
		}
		return nil
	})
}

// readJoinResults reads the committed results of topic: each result's
// value columns by its tx_id.
func readJoinResults(t *testing.T, opts []kgo.Opt, topic string) map[string]map[string]any {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string]map[string]any{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			return out
		}
		fs.EachRecord(func(r *kgo.Record) {
			var row map[string]any
			if err := json.Unmarshal(r.Value, &row); err != nil {
				t.Fatalf("result %s: %v", r.Value, err)
			}
			// The key is the row's identity (its group field tx_id and
			// time, see docs/api.md); the value every column.
			var key map[string]any
			if err := json.Unmarshal(r.Key, &key); err != nil {
				t.Fatalf("result key %s: %v", r.Key, err)
			}
			id, _ := key["tx_id"].(string)
			for _, k := range []string{"tx_id", "time"} {
				delete(row, k)
			}
			out[id] = row
		})
	}
}
