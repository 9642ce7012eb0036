package stream

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// TestStagesCountOnce runs both stages of the city pipeline in-process,
// two workers each, against an in-process broker that fails the first
// produce of a shuffle transaction, so that transaction aborts and its
// events are read again. Every event is folded into both outputs, and the
// event metrics, counted at commit, count each event once.
func TestStagesCountOnce(t *testing.T) {
	plan := testPlan(t, "")
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	var failed atomic.Bool
	cluster.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.ProduceRequest)
		if failed.Load() || req.TransactionID == nil || !strings.Contains(*req.TransactionID, ".shuffle.") {
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
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.InvalidRecord.Code
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
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	m := telemetry.New()
	cfg := StageConfig{Plan: plan, Cluster: Cluster{Opts: opts, Node: "test", SessionTimeout: 6 * time.Second}, Metrics: m}
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
		if a >= n && b >= n {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("events counted: shuffle %v, %s %v, %s %v; want %d each", s, plan.Outputs[0].Name, a, plan.Outputs[1].Name, b, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A few more commit cycles: nothing is counted twice.
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	if !failed.Load() {
		t.Fatal("no shuffle produce was failed")
	}
	if s, a, b := events(); s != n || a != n || b != n {
		t.Fatalf("events counted: shuffle %v, %s %v, %s %v; want %d each", s, plan.Outputs[0].Name, a, plan.Outputs[1].Name, b, n)
	}
	if aborts := testutil.ToFloat64(m.TxnAborts.WithLabelValues(plan.Name, "shuffle")); aborts < 1 {
		t.Errorf("%v shuffle transactions aborted, want at least 1", aborts)
	}
}
