package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// TestStagesCountOnce runs both stages of the city pipeline in-process,
// two workers each, against an in-process broker that fails the first
// produce of a transaction of one stage, so that transaction aborts and
// its input is read again (the shuffle's events; the window stage's
// repartition records, with its tasks restored from their changelogs).
// Every event is folded into both outputs, the event metrics, counted at
// commit, count each event once, and the final results in the result
// topics count every event once: a write the broker refused (a full disk
// on a Kafka cluster arrives so) never leaves a partial transaction.
func TestStagesCountOnce(t *testing.T) {
	for _, tc := range []struct {
		name, stage string
		code        int16
	}{
		{"shuffle write refused", "shuffle", kerr.InvalidRecord.Code},
		{"window write refused", "windows", kerr.InvalidRecord.Code},
		{"window write storage error", "windows", kerr.KafkaStorageError.Code},
	} {
		t.Run(tc.name, func(t *testing.T) { stagesCountOnce(t, tc.stage, tc.code) })
	}
}

func stagesCountOnce(t *testing.T, stage string, code int16) {
	plan := testPlan(t, "")
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	var failed atomic.Bool
	cluster.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.ProduceRequest)
		if failed.Load() || req.TransactionID == nil || !strings.Contains(*req.TransactionID, "."+stage+".") {
			return nil, nil, false
		}
		failed.Store(true)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		resp.SetVersion(req.GetVersion())
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics := []string{pipeline.LateTopic(plan.Name)}
	for _, src := range plan.Source.Topics {
		topics = append(topics, src, pipeline.DLQTopic(src))
	}
	for _, o := range plan.Outputs {
		topics = append(topics, o.Topic)
	}
	repart, changelog := InternalTopics(plan)
	if err := bus.EnsureTopics(ctx, cl, 4, append(topics, repart...)...); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureTopicsWith(ctx, cl, 4, bus.Compacted, changelog...); err != nil {
		t.Fatal(err)
	}

	const n = 20_000
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: plan.Source.Topics[0], Value: cityReading(i%1000, oracleBase+int64(i)*5)})
	}
	// A reading of every sensor two minutes later makes every window of
	// the data final (each sensor_1m group's watermark passes it).
	for i := range 1000 {
		recs = append(recs, &kgo.Record{Topic: plan.Source.Topics[0], Value: cityReading(i, oracleBase+int64(n)*5+120_000)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	m := telemetry.New()
	cfg := StageConfig{Plan: plan, Cluster: Cluster{Opts: opts, Node: "test", SessionTimeout: 6 * time.Second}, Metrics: m,
		State: stagesState}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	run := func(r func(context.Context) error) {
		wg.Go(func() {
			if err := r(runCtx); err != nil {
				t.Errorf("stage: %v", err)
			}
		})
	}
	wcfg := cfg
	wcfg.CommitEvery = 100 * time.Millisecond
	for _, w := range NewWindowers(wcfg, 2) {
		run(w.Run)
	}
	for _, s := range NewShufflers(cfg, 2) {
		run(s.Run)
	}
	events := func() (shuffled, sensor, zone float64) {
		return testutil.ToFloat64(m.PipelineEvents.WithLabelValues(plan.Name)),
			testutil.ToFloat64(m.WindowEvents.WithLabelValues(plan.Name, plan.Outputs[0].Name)),
			testutil.ToFloat64(m.WindowEvents.WithLabelValues(plan.Name, plan.Outputs[1].Name))
	}
	for {
		s, a, b := events()
		if a >= n+1000 && b >= n+1000 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("events counted: shuffle %v, %s %v, %s %v; want %d each", s, plan.Outputs[0].Name, a, plan.Outputs[1].Name, b, n+1000)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every window of the data becomes final; then a few more commit
	// cycles: nothing is counted twice.
	end := oracleBase + int64(n)*5 + 60_000
	checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		for _, o := range plan.Outputs {
			if got := finalCount(t, opts, o.Topic, end); got < n {
				return fmt.Errorf("final results of %s count %d events so far, want %d", o.Topic, got, n)
			}
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	if !failed.Load() {
		t.Fatalf("no %s produce was failed", stage)
	}
	if s, a, b := events(); s != n+1000 || a != n+1000 || b != n+1000 {
		t.Fatalf("events counted: shuffle %v, %s %v, %s %v; want %d each", s, plan.Outputs[0].Name, a, plan.Outputs[1].Name, b, n+1000)
	}
	if code == kerr.InvalidRecord.Code {
		if aborts := testutil.ToFloat64(m.TxnAborts.WithLabelValues(plan.Name, stage)); aborts < 1 {
			t.Errorf("%v %s transactions aborted, want at least 1", aborts, stage)
		}
	}
	for _, o := range plan.Outputs {
		if got := finalCount(t, opts, o.Topic, end); got != n {
			t.Errorf("final results of %s count %d events, want %d", o.Topic, got, n)
		}
	}
	// The window stage cleaned its changelogs and deleted what a restore
	// no longer needs.
	starts, err := kadm.NewClient(cl).ListStartOffsets(ctx, changelog...)
	if err != nil {
		t.Fatal(err)
	}
	deleted := int64(0)
	starts.Each(func(o kadm.ListedOffset) { deleted += o.Offset })
	if deleted == 0 {
		t.Errorf("no changelog record was deleted: %v", starts)
	}
}

// finalCount sums the count of the latest committed result of every group
// and window in topic whose window starts before end (ms).
func finalCount(t *testing.T, opts []kgo.Opt, topic string, end int64) int {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// A poll that finds nothing more within a second read all that is
	// committed (the end offsets would count the transaction markers
	// too).
	latest := map[string]int{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			var row struct {
				WindowStart time.Time `json:"window_start"`
				Count       int       `json:"count"`
			}
			if err := json.Unmarshal(r.Value, &row); err != nil {
				t.Fatalf("result %s: %v", r.Value, err)
			}
			if row.WindowStart.UnixMilli() < end {
				latest[string(r.Key)+"|"+row.WindowStart.String()] = row.Count
			}
		})
	}
	total := 0
	for _, c := range latest {
		total += c
	}
	return total
}

// TestHoldPausesStages runs both stages with Hold reporting true (a disk
// low on space): they start no transaction, so nothing is shuffled or
// folded, however long the hold lasts; once it ends every event goes
// through.
func TestHoldPausesStages(t *testing.T) {
	plan := testPlan(t, "")
	opts, cl, ctx := testBroker(t)
	topics := []string{pipeline.LateTopic(plan.Name)}
	for _, src := range plan.Source.Topics {
		topics = append(topics, src, pipeline.DLQTopic(src))
	}
	for _, o := range plan.Outputs {
		topics = append(topics, o.Topic)
	}
	repart, changelog := InternalTopics(plan)
	if err := bus.EnsureTopics(ctx, cl, 2, append(append(topics, repart...), changelog...)...); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: plan.Source.Topics[0], Value: cityReading(i%100, oracleBase+int64(i)*5)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var held atomic.Bool
	held.Store(true)
	m := telemetry.New()
	cfg := StageConfig{Plan: plan, Cluster: Cluster{Opts: opts, Node: "test", SessionTimeout: 6 * time.Second}, Metrics: m,
		Hold: held.Load, CommitEvery: 50 * time.Millisecond}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, r := range []func(context.Context) error{NewWindower(cfg).Run, NewShuffler(cfg).Run} {
		wg.Go(func() {
			if err := r(runCtx); err != nil {
				t.Errorf("stage: %v", err)
			}
		})
	}
	shuffled := func() float64 { return testutil.ToFloat64(m.PipelineEvents.WithLabelValues(plan.Name)) }
	// Held for a while: the claim is that nothing moves, so this waits
	// rather than polls; it asserts no time.
	time.Sleep(2 * time.Second)
	if got := shuffled(); got != 0 {
		t.Fatalf("%v events shuffled while the stages were held, want 0", got)
	}
	held.Store(false)
	checkfor.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if got := shuffled(); got < n {
			return fmt.Errorf("%v of %d events shuffled after the hold ended", got, n)
		}
		return nil
	})
	stop()
	wg.Wait()
}

// testBroker starts an in-process broker for the test and returns the
// options to reach it, a client, and a context that ends within 90 s; all
// are closed when the test ends.
func testBroker(t *testing.T) ([]kgo.Opt, *kgo.Client, context.Context) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return opts, cl, ctx
}
