package stream

import (
	"context"
	"encoding/json"
	"fmt"
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

// errorsPipeline counts the error logs of each service per minute.
const errorsPipeline = `name: errs
source: {topic: logs, key: service, time: {field: ts}}
event_time: {max_out_of_orderness: 0s, idle_timeout: %s}
where: 'level == "error"'
outputs:
  - name: errors_1m
    group_by: [service]
    window: {tumbling: %s}
    aggregates:
      count: count()
`

// stageEnv runs both stages of a pipeline in-process against an
// in-process broker whose topics have one partition each, so that no
// silent partition holds the watermark.
type stageEnv struct {
	t    *testing.T
	plan *pipeline.Plan
	opts []kgo.Opt
	cl   *kgo.Client
	m    *telemetry.Metrics
	ctx  context.Context
}

func startStages(t *testing.T, plan *pipeline.Plan, cfg StageConfig) *stageEnv {
	t.Helper()
	opts, cl, ctx := testBroker(t)
	topics := []string{pipeline.LateTopic(plan.Name)}
	for _, src := range plan.Source.Topics {
		topics = append(topics, src, pipeline.DLQTopic(src))
	}
	for _, o := range plan.Outputs {
		topics = append(topics, o.Topic)
	}
	repart, changelog := InternalTopics(plan)
	if err := bus.EnsureTopics(ctx, cl, 1, append(topics, repart...)...); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureTopicsWith(ctx, cl, 1, bus.Compacted, changelog...); err != nil {
		t.Fatal(err)
	}
	e := &stageEnv{t: t, plan: plan, opts: opts, cl: cl, m: telemetry.New(), ctx: ctx}
	cfg.Plan, cfg.Metrics = plan, e.m
	cfg.Cluster = Cluster{Opts: opts, Node: "test", SessionTimeout: 6 * time.Second}
	cfg.CommitEvery = 50 * time.Millisecond
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, r := range []func(context.Context) error{NewWindower(cfg).Run, NewShuffler(cfg).Run} {
		wg.Go(func() {
			if err := r(runCtx); err != nil {
				t.Errorf("stage: %v", err)
			}
		})
	}
	t.Cleanup(func() { stop(); wg.Wait() })
	return e
}

// produce writes events to the source topic, in order.
func (e *stageEnv) produce(events ...string) {
	e.t.Helper()
	var recs []*kgo.Record
	for _, ev := range events {
		recs = append(recs, &kgo.Record{Topic: e.plan.Source.Topics[0], Value: []byte(ev)})
	}
	if err := e.cl.ProduceSync(e.ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// committed returns the committed records of topic.
func (e *stageEnv) committed(topic string) []*kgo.Record {
	e.t.Helper()
	cl, err := kgo.NewClient(append(e.opts, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(e.ctx, 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			return out
		}
		out = append(out, fs.Records()...)
	}
}

// finals returns the count of the latest final result of each window
// start of the output topic, by window start.
func (e *stageEnv) finals(topic string) map[time.Time]int {
	e.t.Helper()
	got := map[time.Time]int{}
	for _, r := range e.committed(topic) {
		var row struct {
			WindowStart time.Time `json:"window_start"`
			Count       int       `json:"count"`
		}
		if err := json.Unmarshal(r.Value, &row); err != nil {
			e.t.Fatalf("result %s: %v", r.Value, err)
		}
		got[row.WindowStart.UTC()] = row.Count
	}
	return got
}

// waitFinal waits until the output's final result of the window starting
// at start counts want events.
func (e *stageEnv) waitFinal(start time.Time, want int, within time.Duration) {
	e.t.Helper()
	topic := e.plan.Outputs[0].Topic
	checkfor.CheckFor(e.t, within, 200*time.Millisecond, func() error {
		if got, ok := e.finals(topic)[start.UTC()]; !ok || got != want {
			return fmt.Errorf("final result of the window at %s: count %d (emitted: %v), want %d", start.UTC().Format(time.RFC3339), got, ok, want)
		}
		return nil
	})
}

func logLine(level string, ts time.Time) string {
	return fmt.Sprintf(`{"service":"api","level":%q,"ts":%q}`, level, ts.UTC().Format(time.RFC3339Nano))
}

// TestFilteredEventsAdvanceWatermark: under where level == "error", the
// info logs that follow an error close its minute, although no later
// error arrives and the partition never turns idle (idle_timeout 10m).
func TestFilteredEventsAdvanceWatermark(t *testing.T) {
	e := startStages(t, testPlan(t, fmt.Sprintf(errorsPipeline, "10m", "1m")), StageConfig{})
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	e.produce(logLine("error", base.Add(10*time.Second)), logLine("info", base.Add(30*time.Second)),
		logLine("info", base.Add(61*time.Second)))
	e.waitFinal(base, 1, 30*time.Second)
	if got := testutil.ToFloat64(e.m.PipelineFiltered.WithLabelValues("errs")); got != 2 {
		t.Errorf("%v events filtered, want 2", got)
	}
}

// TestFutureEventDoesNotHoldWatermark: an event 50 minutes ahead of the
// clock, accepted under a one-hour --max-future, moves the watermark
// only up to the clock: the event that follows it, at the clock's time,
// is not late and counts in its window (5 s windows; the pipeline idle
// after 1 s closes them as the clock passes their end).
func TestFutureEventDoesNotHoldWatermark(t *testing.T) {
	e := startStages(t, testPlan(t, fmt.Sprintf(errorsPipeline, "1s", "5s")), StageConfig{MaxFuture: time.Hour})
	first := time.Now()
	e.produce(logLine("error", first), logLine("error", first.Add(50*time.Minute)))
	// Both are folded, and the marker after them applied, before the
	// next event is written.
	checkfor.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if got := testutil.ToFloat64(e.m.WindowEvents.WithLabelValues("errs", "errors_1m")); got < 2 {
			return fmt.Errorf("%v events folded, want 2", got)
		}
		return nil
	})
	next := time.Now()
	e.produce(logLine("error", next))
	w1, w2 := first.Truncate(5*time.Second), next.Truncate(5*time.Second)
	if w1.Equal(w2) {
		e.waitFinal(w2, 2, 30*time.Second)
	} else {
		e.waitFinal(w1, 1, 30*time.Second)
		e.waitFinal(w2, 1, 30*time.Second)
	}
	if late := e.committed(pipeline.LateTopic("errs")); len(late) != 0 {
		t.Errorf("%d events sent to the late topic, want none: %s", len(late), late[0].Value)
	}
}

// TestMaxFutureRejectsFromSourceTopic: an event written to the source
// topic directly, further ahead of the clock than MaxFuture, goes to the
// dead-letter topic with the reason, as ingest would have refused it.
func TestMaxFutureRejectsFromSourceTopic(t *testing.T) {
	e := startStages(t, testPlan(t, fmt.Sprintf(errorsPipeline, "10m", "1m")), StageConfig{MaxFuture: 5 * time.Minute})
	e.produce(logLine("error", time.Now().Add(50*time.Minute)))
	var dlq []*kgo.Record
	checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if dlq = e.committed(pipeline.DLQTopic("logs")); len(dlq) != 1 {
			return fmt.Errorf("%d dead letters, want 1", len(dlq))
		}
		return nil
	})
	var reason string
	for _, h := range dlq[0].Headers {
		if h.Key == "pulse-error" {
			reason = string(h.Value)
		}
	}
	if want := "more than 5m0s ahead of the clock"; !strings.Contains(reason, want) {
		t.Errorf("dead letter reason %q, want it to say %q", reason, want)
	}
}

// TestIdlePipelineClosesWindows: a few readings for a past minute and
// nothing after them (the quick start without the demo) give their
// result once the pipeline has been idle for idle_timeout and the rest
// of the minute, without a later event.
func TestIdlePipelineClosesWindows(t *testing.T) {
	e := startStages(t, testPlan(t, fmt.Sprintf(errorsPipeline, "1s", "1m")), StageConfig{})
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	e.produce(logLine("error", base.Add(50*time.Second)), logLine("error", base.Add(55*time.Second)))
	e.waitFinal(base, 2, 30*time.Second)
}
