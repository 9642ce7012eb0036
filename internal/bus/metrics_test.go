package bus

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/checkfor"
)

// producedRecords returns pulse_kafka_produce_records_total per client id.
func producedRecords(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "pulse_kafka_produce_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[label(m, "client_id")] += m.GetCounter().GetValue()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestClientMetrics: two clients asking for one id both count under ids
// of their own, and a closed client's series go and its id is free again.
func TestClientMetrics(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	reg := prometheus.NewRegistry()
	cm := NewClientMetrics(reg)
	open := func() *kgo.Client {
		cl, err := kgo.NewClient(append(cm.Opts("pulse-test"), kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("t"))...)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	produce := func(cl *kgo.Client, n int) {
		for range n {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A client counts a batch after its produce request answered, which
	// may be just after ProduceSync returned: poll.
	counts := func(what string, want map[string]float64) {
		t.Helper()
		checkfor.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if got := producedRecords(t, reg); !maps.Equal(got, want) {
				return fmt.Errorf("%s: records by client id %v; want %v", what, got, want)
			}
			return nil
		})
	}
	a, b := open(), open()
	produce(a, 3)
	produce(b, 2)
	counts("two clients of one id", map[string]float64{"pulse-test": 3, "pulse-test-2": 2})
	a.Close()
	counts("the first closed", map[string]float64{"pulse-test-2": 2})
	c := open() // takes the id given back
	defer c.Close()
	defer b.Close()
	produce(c, 1)
	counts("a third client, with the id given back", map[string]float64{"pulse-test": 1, "pulse-test-2": 2})
}

// TestClientMetricsNil: without metrics a client still gets its id.
func TestClientMetricsNil(t *testing.T) {
	var cm *ClientMetrics
	cl, err := kgo.NewClient(cm.Opts("pulse-x")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if id := cl.OptValue(kgo.ClientID); id != "pulse-x" {
		t.Fatalf("client id %v; want pulse-x", id)
	}
}
