package bus

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
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
	a, b := open(), open()
	produce(a, 3)
	produce(b, 2)
	got := producedRecords(t, reg)
	if got["pulse-test"] != 3 || got["pulse-test-2"] != 2 || len(got) != 2 {
		t.Fatalf("records by client id: %v; want pulse-test 3 and pulse-test-2 2", got)
	}
	a.Close()
	if got := producedRecords(t, reg); got["pulse-test"] != 0 || got["pulse-test-2"] != 2 {
		t.Fatalf("after closing the first client: %v; want only pulse-test-2", got)
	}
	c := open() // takes the id given back
	defer c.Close()
	defer b.Close()
	produce(c, 1)
	if got := producedRecords(t, reg); got["pulse-test"] != 1 || got["pulse-test-2"] != 2 {
		t.Fatalf("a third client: %v; want pulse-test 1 (its id again) and pulse-test-2 2", got)
	}
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
