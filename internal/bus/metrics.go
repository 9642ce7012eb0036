package bus

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

// ClientMetrics gives Pulse's long-lived franz-go clients their
// Prometheus metrics (kprom): connections, errors and bytes per broker,
// records, batches and bytes produced and fetched per topic, all named
// pulse_kafka_* and labelled with the client's id
// (pulse_kafka_produce_records_total{client_id="pulse-ingest",...}).
//
// kprom registers a client's collectors when the client starts and
// unregisters them when it closes, so two clients open at once need
// different ids: Opts hands out the id asked for, or that id with a
// suffix (-2, -3, ...) while a client of that id is open. A nil
// *ClientMetrics gives clients their id and no metrics.
type ClientMetrics struct {
	reg prometheus.Registerer
	mu  sync.Mutex
	ids map[string]bool // the ids of open clients
}

// NewClientMetrics returns the metrics of clients, registered with reg.
func NewClientMetrics(reg prometheus.Registerer) *ClientMetrics {
	return &ClientMetrics{reg: reg, ids: map[string]bool{}}
}

// Opts returns the options of a client with id: kgo.ClientID and, when
// m is not nil, the kprom hooks.
func (m *ClientMetrics) Opts(id string) []kgo.Opt {
	if m == nil {
		return []kgo.Opt{kgo.ClientID(id)}
	}
	m.mu.Lock()
	unique := id
	for n := 2; m.ids[unique]; n++ {
		unique = fmt.Sprintf("%s-%d", id, n)
	}
	m.ids[unique] = true
	m.mu.Unlock()
	prom := kprom.NewMetrics("pulse_kafka", kprom.Registerer(m.reg), kprom.WithClientLabel(),
		// Per topic, not per broker as well: a topic's partitions spread
		// over the brokers, and the series would multiply.
		kprom.FetchAndProduceDetail(kprom.ByTopic, kprom.Records, kprom.Batches,
			kprom.CompressedBytes, kprom.UncompressedBytes, kprom.ConsistentNaming))
	// The id is given back after kprom unregistered the client's
	// collectors: hooks run in the order given.
	return []kgo.Opt{kgo.ClientID(unique), kgo.WithHooks(prom, release{m, unique})}
}

// release gives a closed client's id back.
type release struct {
	m  *ClientMetrics
	id string
}

func (r release) OnClientClosed(*kgo.Client) {
	r.m.mu.Lock()
	delete(r.m.ids, r.id)
	r.m.mu.Unlock()
}
