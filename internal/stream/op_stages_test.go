package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// TestRowOutputsThroughStages runs both stages of a pipeline with an
// events and a detect output against an in-process broker: the shuffle
// carries the fields the operators read, the window stage runs the
// operators the outputs' kinds name, their rows reach the output topics,
// and the events they refuse reach the dead-letter topic with the reason.
//
// Keys a and b each send 10, 12, 10, 12, … (ten points) and then 100: the
// events output keeps v > 50 (the two 100s); the detector (alpha 0.5,
// warm-up 3, threshold 2) scores |z| at most 1.74 for the alternating
// points and 94 for the 100 of each key, worked out from the rules in
// detector_zscore.go. Key c's note is a number where the events output
// declares a string: refused there, scored by the detector (one point, no
// row). Key b's string v is refused by both. A last point a minute later
// moves the watermark past the rest.
func TestRowOutputsThroughStages(t *testing.T) {
	plan := testPlan(t, `name: ops
source: {topic: ops_in, key: k, time: {field: ts, format: epoch_ms}}
event_time: {max_out_of_orderness: 1s, idle_timeout: 1s}
outputs:
  - name: big
    group_by: [k]
    events: {where: 'v > 50.0', fields: {v: float64, note: string}}
  - name: spikes
    group_by: [k]
    detect: {detector: zscore, fields: [v], alpha: 0.5, threshold: 2, warm_up: 3}
`)
	opts, cl, ctx := testBroker(t)
	src := plan.Source.Topics[0]
	topics := []string{pipeline.LateTopic(plan.Name), pipeline.DLQTopic(src)}
	for _, o := range plan.Outputs {
		topics = append(topics, o.Topic)
	}
	repart, changelog := InternalTopics(plan)
	if err := bus.EnsureTopics(ctx, cl, 1, src); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureTopics(ctx, cl, 2, append(topics, repart...)...); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureTopicsWith(ctx, cl, 2, bus.Compacted, changelog...); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	add := func(format string, args ...any) {
		recs = append(recs, &kgo.Record{Topic: src, Value: fmt.Appendf(nil, format, args...)})
	}
	for i := range 10 {
		for _, k := range []string{"a", "b"} {
			add(`{"k":%q,"ts":%d,"v":%d,"note":"n%d"}`, k, oracleBase+int64(i)*100, 10+2*(i%2), i)
		}
	}
	add(`{"k":"a","ts":%d,"v":100,"note":"spike"}`, oracleBase+1000)
	add(`{"k":"b","ts":%d,"v":100}`, oracleBase+1000)
	add(`{"k":"c","ts":%d,"v":60,"note":5}`, oracleBase+1000)
	add(`{"k":"b","ts":%d,"v":"x"}`, oracleBase+1100)
	add(`{"k":"a","ts":%d,"v":11}`, oracleBase+60_000)
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cfg := StageConfig{Plan: plan, Cluster: Cluster{Opts: opts, Node: "test", SessionTimeout: 6 * time.Second}, CommitEvery: 100 * time.Millisecond}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, r := range []func(context.Context) error{NewWindower(cfg).Run, NewShuffler(cfg).Run} {
		wg.Go(func() {
			if err := r(runCtx); err != nil {
				t.Errorf("stage: %v", err)
			}
		})
	}
	want := map[string]int{plan.Outputs[0].Topic: 2, plan.Outputs[1].Topic: 2, pipeline.DLQTopic(src): 3}
	var got map[string][]*kgo.Record
	checkfor.CheckFor(t, 40*time.Second, 200*time.Millisecond, func() error {
		got = committedRecords(t, opts, topics...)
		for topic, n := range want {
			if len(got[topic]) != n {
				return fmt.Errorf("%s holds %d records, want %d", topic, len(got[topic]), n)
			}
		}
		return nil
	})
	stop()
	wg.Wait()
	for _, r := range got[plan.Outputs[1].Topic] {
		if k := string(r.Key); (k != `{"k":"a","field":"v","time":"2026-03-01T12:00:01Z"}` && k != `{"k":"b","field":"v","time":"2026-03-01T12:00:01Z"}`) ||
			!strings.Contains(string(r.Value), `"z":94.0007849477`) {
			t.Errorf("detect row of key %q: %s", k, r.Value)
		}
	}
	reasons := map[string]bool{}
	for _, r := range got[pipeline.DLQTopic(src)] {
		if !json.Valid(r.Value) || !strings.Contains(string(r.Value), `"k":`) {
			t.Errorf("dead letter %q is not the event as JSON", r.Value)
		}
		for _, h := range r.Headers {
			if h.Key == "pulse-error" {
				reasons[string(h.Value)] = true
			}
		}
	}
	for _, want := range []string{"output big: field note: 5 is a number, the output declares it a string", "output big: where", "output spikes: field v is a string"} {
		found := false
		for r := range reasons {
			found = found || strings.Contains(r, want)
		}
		if !found {
			t.Errorf("no dead letter says %q; reasons: %v", want, reasons)
		}
	}
	if n := len(got[pipeline.LateTopic(plan.Name)]); n != 0 {
		t.Errorf("%d late events, want none", n)
	}
}

// committedRecords reads every committed record of topics.
func committedRecords(t *testing.T, opts []kgo.Opt, topics ...string) map[string][]*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topics...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string][]*kgo.Record{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			return out
		}
		fs.EachRecord(func(r *kgo.Record) { out[r.Topic] = append(out[r.Topic], r) })
	}
}
