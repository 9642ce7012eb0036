package loadgen

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaSender produces readings straight to a Kafka topic, keyed by sensor
// and stamped with the time they are produced, as Pulse's ingest does: the
// pipeline's ingest-to-live latency is measured from that stamp, so it must
// not be the (deliberately out-of-order) event time.
type kafkaSender struct {
	cl     *kgo.Client
	topic  string
	st     *stats
	reqCtx context.Context
}

func newKafkaSender(cfg Config, st *stats, reqCtx context.Context) (*kafkaSender, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID("pulse-loadgen"),
		kgo.DefaultProduceTopic(cfg.Stream),
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.MaxBufferedRecords(max(10000, 2*cfg.BatchSize*cfg.Concurrency)),
	)
	if err != nil {
		return nil, fmt.Errorf("loadgen: create Kafka client for %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	return &kafkaSender{cl: cl, topic: cfg.Stream, st: st, reqCtx: reqCtx}, nil
}

func (s *kafkaSender) close() { s.cl.Close() }

func (s *kafkaSender) newWorker() worker {
	w := &kafkaWorker{s: s}
	w.promise = w.acked
	return w
}

type kafkaWorker struct {
	s       *kafkaSender
	buf     []byte
	ends    []int
	recs    []kgo.Record
	promise func(*kgo.Record, error)
	begin   time.Time
	wg      sync.WaitGroup

	mu       sync.Mutex // promises of different partitions may run at once
	ok, fail int
	firstErr error
}

func (w *kafkaWorker) fill(c *City, n int, now time.Time) {
	w.buf, w.ends, w.recs = w.buf[:0], w.ends[:0], w.recs[:0]
	for range n {
		var idx int
		w.buf, idx, _ = c.next(w.buf, now, false)
		w.ends = append(w.ends, len(w.buf))
		w.recs = append(w.recs, kgo.Record{Topic: w.s.topic, Key: c.sensors[idx].key})
	}
	start := 0
	for i, end := range w.ends {
		w.recs[i].Value = w.buf[start:end:end]
		start = end
	}
}

func (w *kafkaWorker) send() {
	w.ok, w.fail, w.firstErr = 0, 0, nil
	w.begin = time.Now()
	w.wg.Add(len(w.recs))
	for i := range w.recs {
		w.s.cl.Produce(w.s.reqCtx, &w.recs[i], w.promise)
	}
	w.wg.Wait()
	w.s.st.done(len(w.recs), w.ok, 0)
	if w.firstErr != nil {
		w.s.st.warn("loadgen: produce failed", "topic", w.s.topic, "failed", w.fail, "err", w.firstErr)
	}
}

func (w *kafkaWorker) acked(_ *kgo.Record, err error) {
	w.s.st.lat.record(time.Since(w.begin))
	w.mu.Lock()
	if err != nil {
		w.fail++
		if w.firstErr == nil {
			w.firstErr = err
		}
	} else {
		w.ok++
	}
	w.mu.Unlock()
	w.wg.Done()
}
