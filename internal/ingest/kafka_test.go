package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// testEnv is an ingest handler behind an HTTP server, producing to an
// in-process kfake broker.
type testEnv struct {
	cluster *kfake.Cluster
	client  *kgo.Client
	handler *Handler
	srv     *httptest.Server
	metrics *telemetry.Metrics
}

// newTestEnv starts a one-broker kfake cluster with topics city and
// city.dlq of 4 partitions and serves a handler configured by cfg.
func newTestEnv(t testing.TB, cfg Config, opts ...kgo.Opt) *testEnv {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "city", "city.dlq"))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(cluster.Close)
	client, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ProducerLinger(time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(client.Close)
	cfg.Client = client
	if cfg.Streams == nil {
		cfg.Streams = []Stream{{Name: "city", Source: pipeline.Source{Topics: []string{"city"}, Schema: "city", KeyField: "sensor_id", TimeField: "ts", TimeFormat: "auto"}}}
	}
	env := &testEnv{cluster: cluster, client: client, metrics: cfg.Metrics}
	env.handler = New(cfg)
	mux := http.NewServeMux()
	mux.Handle("POST /v1/streams/{stream}/events", env.handler)
	env.srv = httptest.NewServer(mux)
	t.Cleanup(env.srv.Close)
	return env
}

// reply is a decoded answer of the handler: a Response on 200 and 503, an
// errorBody otherwise.
type reply struct {
	code   int
	header http.Header
	resp   Response
	err    errorBody
	raw    string
}

func (e *testEnv) post(t testing.TB, stream string, body []byte, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/streams/"+stream+"/events", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	r := reply{code: res.StatusCode, header: res.Header, raw: string(raw)}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	target := any(&r.err)
	if r.code == http.StatusOK || r.code == http.StatusServiceUnavailable {
		target = &r.resp
	}
	if err := json.Unmarshal(raw, target); err != nil {
		t.Fatalf("answer %d %q is not JSON: %v", r.code, raw, err)
	}
	return r
}

// endOffsets returns how many records each topic holds, summed over
// partitions. The handler answers only after the broker acknowledged every
// write, so the count is final when the answer arrives.
func (e *testEnv) endOffsets(t testing.TB, topics ...string) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	out := make(map[string]int64)
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Topic] += o.Offset
	})
	return out
}

// consume reads exactly n records of topic from the start, failing after
// a deadline.
func (e *testEnv) consume(t testing.TB, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(e.cluster.ListenAddrs()...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s before the deadline", len(recs), n, topic)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		recs = append(recs, fs.Records()...)
	}
	if len(recs) != n {
		t.Fatalf("consumed %d records of %s, want %d", len(recs), topic, n)
	}
	return recs
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}
