package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// unread is a body that records whether anything read it.
type unread struct{ read atomic.Bool }

func (u *unread) Read(p []byte) (int, error) {
	u.read.Store(true)
	return copy(p, events(1)[0]), io.EOF
}

func counter(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Gauge != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

// TestGateRefuses checks that a gate's refusal answers its code with
// Retry-After in whole seconds rounded up and {"error": reason}, without
// reading the body of a client that waits for "100 Continue" (and
// discarding it otherwise, so that the client reads the answer), and
// counts in pulse_ingest_refused_total.
func TestGateRefuses(t *testing.T) {
	var closed atomic.Bool
	disk := func() *Refusal {
		if closed.Load() {
			return &Refusal{Code: http.StatusInsufficientStorage, RetryAfter: 1500 * time.Millisecond, Reason: "disk full: 3 MiB free in /data"}
		}
		return nil
	}
	env := newTestEnv(t, Config{Metrics: telemetry.New(), Gates: []Gate{func() *Refusal { return nil }, disk}})
	if r := env.post(t, "city", []byte(events(1)[0])); r.code != http.StatusOK {
		t.Fatalf("open gates: answer %d %s, want 200", r.code, r.raw)
	}
	closed.Store(true)
	body := &unread{}
	req := httptest.NewRequest(http.MethodPost, "/v1/streams/city/events", body)
	req.Header.Set("Expect", "100-continue")
	req.SetPathValue("stream", "city")
	w := httptest.NewRecorder()
	env.handler.ServeHTTP(w, req)
	if w.Code != http.StatusInsufficientStorage || w.Header().Get("Retry-After") != "2" ||
		strings.TrimSpace(w.Body.String()) != `{"error":"disk full: 3 MiB free in /data"}` {
		t.Fatalf("answer %d Retry-After %q %s, want 507, Retry-After 2 and the reason", w.Code, w.Header().Get("Retry-After"), w.Body.String())
	}
	if body.read.Load() {
		t.Error("the body of a refused request that expects 100-continue was read")
	}
	// Without Expect the body is discarded, not stored, and the answer
	// is the same.
	req = httptest.NewRequest(http.MethodPost, "/v1/streams/city/events", strings.NewReader(events(1)[0]))
	req.SetPathValue("stream", "city")
	w = httptest.NewRecorder()
	env.handler.ServeHTTP(w, req)
	if w.Code != http.StatusInsufficientStorage {
		t.Fatalf("answer %d %s without Expect, want 507", w.Code, w.Body.String())
	}
	if n, _ := req.Body.Read(make([]byte, 1)); n != 0 {
		t.Error("the body of a refused request without Expect was left unread: its client would have its connection reset while sending")
	}
	if got := counter(t, env.metrics.IngestRefused.WithLabelValues("city", "disk full")); got != 2 {
		t.Errorf("pulse_ingest_refused_total{reason=disk full} = %v, want 2", got)
	}
	if got := env.endOffsets(t, "city"); got["city"] != 1 {
		t.Errorf("city holds %d records, want the 1 of the admitted request", got["city"])
	}
}

// TestLagGate checks that ingest answers 503 with Retry-After while the
// lag is above the bound and admits again once it is not.
func TestLagGate(t *testing.T) {
	var lag atomic.Int64
	env := newTestEnv(t, Config{Metrics: telemetry.New(), Gates: []Gate{LagGate(100, lag.Load)}})
	for _, tc := range []struct {
		lag  int64
		code int
	}{{50, 200}, {100, 200}, {101, 503}, {5000, 503}, {0, 200}} {
		lag.Store(tc.lag)
		r := env.post(t, "city", []byte(events(1)[0]))
		if r.code != tc.code {
			t.Fatalf("lag %d: answer %d %s, want %d", tc.lag, r.code, r.raw, tc.code)
		}
		if tc.code == 503 {
			var e errorBody
			_ = json.Unmarshal([]byte(r.raw), &e)
			if r.header.Get("Retry-After") != "1" || !strings.HasPrefix(e.Error, "consumer lag: ") || !strings.Contains(e.Error, strconv.FormatInt(tc.lag, 10)) {
				t.Errorf("lag %d: Retry-After %q, error %q; want 1 and a reason naming the lag", tc.lag, r.header.Get("Retry-After"), e.Error)
			}
		}
	}
	if got := counter(t, env.metrics.IngestRefused.WithLabelValues("city", "consumer lag")); got != 2 {
		t.Errorf("pulse_ingest_refused_total{reason=consumer lag} = %v, want 2", got)
	}
}

// TestInflightLimit holds one request in flight (its broker does not
// answer) and checks that others are refused at once, with or without a
// Content-Length, that the reservation is released when its records fail,
// and after a request is acknowledged.
func TestInflightLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m := telemetry.New()
	env := newTestEnv(t, Config{Metrics: m, MaxInflight: 1000, ProduceTimeout: 2 * time.Second},
		kgo.RecordDeliveryTimeout(2*time.Second), kgo.SeedBrokers(addr))
	body := []byte(strings.Join(events(20), "\n"))
	if len(body) <= 1000 {
		t.Fatalf("test body of %d bytes is within the limit", len(body))
	}
	first := make(chan reply, 1)
	go func() { first <- env.post(t, "city", body) }()
	checkfor.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if v := counter(t, m.IngestInflight); v < float64(len(body)) {
			return fmt.Errorf("in-flight bytes %v, want the first request's %d or more", v, len(body))
		}
		return nil
	})
	for name, rd := range map[string]io.Reader{
		"with Content-Length":    bytes.NewReader(body),
		"without Content-Length": io.MultiReader(bytes.NewReader(body)),
	} {
		res, err := http.Post(env.srv.URL+"/v1/streams/city/events", "application/x-ndjson", rd)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || !bytes.HasPrefix(raw, []byte(`{"error":"overloaded: `)) {
			t.Errorf("%s: answer %d Retry-After %q %s, want 503 overloaded with Retry-After", name, res.StatusCode, res.Header.Get("Retry-After"), raw)
		}
	}
	if r := <-first; r.code != 503 || r.resp.Failed == 0 {
		t.Fatalf("first request: %d %s, want 503 with failed events (no broker)", r.code, r.raw)
	}
	checkfor.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if v := counter(t, m.IngestInflight); v != 0 {
			return fmt.Errorf("in-flight bytes %v after the request failed, want 0", v)
		}
		return nil
	})
	if got := counter(t, m.IngestRefused.WithLabelValues("city", "overloaded")); got != 2 {
		t.Errorf("pulse_ingest_refused_total{reason=overloaded} = %v, want 2", got)
	}

	ok := newTestEnv(t, Config{Metrics: telemetry.New(), MaxInflight: 1000})
	for range 3 {
		if r := ok.post(t, "city", body); r.code != 200 {
			t.Fatalf("answer %d %s, want 200: a request alone goes through", r.code, r.raw)
		}
	}
	if v := counter(t, ok.metrics.IngestInflight); v != 0 {
		t.Errorf("in-flight bytes %v after acknowledged requests, want 0", v)
	}
}

// TestBreakerRefusesWhileBrokerDown checks that once the broker is down
// (a real one closes connections, and each reconnect fails) ingest answers
// 503 naming the broker at once, rather than after the produce timeout (a
// minute here), and accepts again when it is back.
func TestBreakerRefusesWhileBrokerDown(t *testing.T) {
	br := NewBreaker()
	br.Window = 100 * time.Millisecond
	br.ProbeEvery = 50 * time.Millisecond
	env := newTestEnv(t, Config{Metrics: telemetry.New(), Breaker: br, ProduceTimeout: time.Minute},
		kgo.RecordDeliveryTimeout(time.Minute), kgo.WithHooks(br))
	ctx, cancel := context.WithCancel(context.Background())
	probed := make(chan error, 1)
	go func() { probed <- br.Run(ctx, env.client.Ping) }()
	defer func() { cancel(); <-probed }()
	var down atomic.Bool
	env.cluster.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		env.cluster.KeepControl()
		if down.Load() {
			return nil, errors.New("broker down for the test"), true
		}
		return nil, nil, false
	})
	body := []byte(strings.Join(events(3), "\n"))
	if r := env.post(t, "city", body); r.code != 200 {
		t.Fatalf("warm-up answer %d %s", r.code, r.raw)
	}
	down.Store(true)

	// A request in flight when the broker went away waits for it.
	pending := make(chan reply, 1)
	go func() { pending <- env.post(t, "city", body) }()
	quick := &http.Client{Timeout: 5 * time.Second}
	post := func() (int, string, error) {
		res, err := quick.Post(env.srv.URL+"/v1/streams/city/events", "application/x-ndjson", bytes.NewReader(body))
		if err != nil {
			return 0, "", fmt.Errorf("no quick answer: %w", err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode == 503 && res.Header.Get("Retry-After") == "" {
			return 0, "", fmt.Errorf("503 without Retry-After: %s", raw)
		}
		return res.StatusCode, string(raw), nil
	}
	checkfor.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		code, raw, err := post()
		if err == nil && (code != 503 || !strings.Contains(raw, "broker unreachable: the Kafka broker at 127.0.0.1:")) {
			err = fmt.Errorf("answer %d %s, want 503 broker unreachable", code, raw)
		}
		return err
	})
	down.Store(false)
	checkfor.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		code, raw, err := post()
		if err == nil && code != 200 {
			err = fmt.Errorf("answer %d %s after the broker came back", code, raw)
		}
		return err
	})
	if r := <-pending; r.code != 200 {
		t.Errorf("the request in flight during the outage: %d %s, want 200 once the broker is back", r.code, r.raw)
	}
	if got := counter(t, env.metrics.IngestRefused.WithLabelValues("city", "broker unreachable")); got == 0 {
		t.Error("pulse_ingest_refused_total{reason=broker unreachable} = 0")
	}
}

// TestBreakerWindow checks that a failure soon after a success leaves the
// breaker closed (one broker of several may be down), that failures past
// the window open it, and that a success closes it.
func TestBreakerWindow(t *testing.T) {
	b := NewBreaker()
	b.Window = time.Hour
	b.OnBrokerConnect(kgo.BrokerMetadata{Host: "10.0.0.9", Port: 9092}, 0, nil, fmt.Errorf("dial: connection refused"))
	if r := b.Gate(); r != nil {
		t.Fatalf("open after one failure within the window: %v", r)
	}
	b.Window = 0
	b.observe(fmt.Errorf("record: %w", kgo.ErrRecordTimeout))
	r := b.Gate()
	if r == nil || r.Code != 503 || !strings.HasPrefix(r.Reason, "broker unreachable:") {
		t.Fatalf("gate after a timeout past the window: %+v", r)
	}
	b.success()
	if r := b.Gate(); r != nil {
		t.Fatalf("open after a success: %v", r)
	}
	b.OnBrokerConnect(kgo.BrokerMetadata{Host: "10.0.0.9", Port: 9092}, 0, nil, fmt.Errorf("dial: connection refused"))
	if r := b.Gate(); r == nil || !strings.Contains(r.Reason, "10.0.0.9:9092") {
		t.Fatalf("gate after a failed dial: %+v, want the broker's address", r)
	}
	b.success()
	b.observe(fmt.Errorf("record too large: %w", kgo.ErrMaxBuffered))
	if r := b.Gate(); r != nil {
		t.Fatalf("a record's own error opened the breaker: %v", r)
	}
}
