package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/event"
)

// fakePulse answers like Pulse's ingest endpoint: it decodes NDJSON,
// validates every reading and counts them.
type fakePulse struct {
	mu       sync.Mutex
	received int
	invalid  []string
	requests int
	// status, when set, replaces the answer for every request.
	status int
}

func (f *fakePulse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/streams/city/events" ||
		r.Header.Get("Content-Type") != "application/x-ndjson" {
		http.Error(w, `{"error":"wrong request"}`, http.StatusBadRequest)
		return
	}
	var p event.CityParser
	var rd event.Reading
	accepted, rejected := 0, 0
	var bad []string
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		if err := p.Parse(sc.Bytes(), &rd); err != nil {
			rejected++
			bad = append(bad, sc.Text()+": "+err.Error())
			continue
		}
		accepted++
	}
	f.mu.Lock()
	f.requests++
	f.received += accepted + rejected
	f.invalid = append(f.invalid, bad...)
	status := f.status
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch status {
	case 0:
		json.NewEncoder(w).Encode(map[string]any{"accepted": accepted, "rejected": rejected, "errors": []any{}})
	case http.StatusServiceUnavailable: // half stored, half failed
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"accepted": accepted / 2, "rejected": rejected, "failed": accepted - accepted/2,
			"errors": []map[string]any{{"index": 0, "error": "not stored, the broker did not acknowledge it"}}})
	default:
		w.WriteHeader(status)
		w.Write([]byte(`{"error":"broken on purpose"}`))
	}
}

func checkConsistent(t *testing.T, s Summary) {
	t.Helper()
	if s.Sent != s.Accepted+s.Rejected+s.Errors {
		t.Fatalf("sent %d != accepted %d + rejected %d + errors %d", s.Sent, s.Accepted, s.Rejected, s.Errors)
	}
	if s.Elapsed <= 0 || s.Sent > 0 && (s.Rate <= 0 || s.P50 <= 0 || s.P99 < s.P50) {
		t.Fatalf("inconsistent summary %v", s)
	}
}

func TestRunHTTP(t *testing.T) {
	f := &fakePulse{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var progress bytes.Buffer
	sum, err := Run(context.Background(), Config{
		Target: srv.URL, Rate: 2000, Sensors: 200, Zones: 10, Duration: 1200 * time.Millisecond, Seed: 1,
		AnomalyRate: 0.01, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, sum)
	if sum.Sent < 1000 || sum.Sent > 3500 {
		t.Fatalf("sent %d readings in 1.2 s at 2000/s", sum.Sent)
	}
	if sum.Errors != 0 || sum.Rejected != 0 || sum.Accepted != sum.Sent {
		t.Fatalf("summary %v, want everything accepted", sum)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.invalid) > 0 {
		t.Fatalf("%d invalid readings, first: %s", len(f.invalid), f.invalid[0])
	}
	if uint64(f.received) != sum.Accepted {
		t.Fatalf("server received %d, summary says %d accepted", f.received, sum.Accepted)
	}
	// Default batch is rate/50 = 40 readings.
	if want := int(sum.Sent) / 40; f.requests != want {
		t.Fatalf("%d requests for %d readings, want %d", f.requests, sum.Sent, want)
	}
	if !strings.Contains(progress.String(), "sent=") || !strings.Contains(progress.String(), "p99=") {
		t.Fatalf("progress output %q", progress.String())
	}
}

func TestRunHTTPErrors(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusInternalServerError} {
		f := &fakePulse{status: status}
		srv := httptest.NewServer(f)
		sum, err := Run(context.Background(), Config{
			Target: srv.URL, Rate: 1000, BatchSize: 10, Duration: 300 * time.Millisecond, Seed: 2,
		})
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		checkConsistent(t, sum)
		switch {
		case sum.Sent == 0:
			t.Fatalf("status %d: nothing sent", status)
		case status == http.StatusServiceUnavailable && (sum.Accepted != sum.Sent/2 || sum.Errors != sum.Sent/2):
			t.Fatalf("status 503: %v, want half accepted, half errors", sum)
		case status == http.StatusInternalServerError && sum.Errors != sum.Sent:
			t.Fatalf("status 500: %v, want all errors", sum)
		}
	}
}

func TestRunWaitsForStartingTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens for a while, as when Pulse is starting
	f := &fakePulse{}
	srv := &http.Server{Handler: f}
	go func() {
		time.Sleep(400 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		srv.Serve(ln)
	}()
	defer srv.Close()
	sum, err := Run(context.Background(), Config{
		Target: "http://" + addr, Rate: 1000, Duration: time.Second, Seed: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, sum)
	if sum.Errors != 0 || sum.Accepted == 0 {
		t.Fatalf("summary %v: refused connections at start should be retried quietly", sum)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	var inFlight atomic.Int32
	f := &fakePulse{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		time.Sleep(50 * time.Millisecond) // slow target: requests are in flight at the end
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	sum, err := Run(ctx, Config{Target: srv.URL, Rate: 5000, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Run took %v after its context ended", d)
	}
	checkConsistent(t, sum)
	if sum.Errors != 0 || sum.Accepted == 0 || inFlight.Load() != 0 {
		t.Fatalf("summary %v, in flight %d: requests should finish, not fail", sum, inFlight.Load())
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Target: "http://x", Brokers: []string{"b:9092"}},
		{Target: "ftp://x"},
		{Target: "127.0.0.1:8080"},
		{Target: "http://x", Sensors: -1},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run(%+v) accepted a bad configuration", cfg)
		}
	}
}

// TestRunWaitsAsRefusalsAsk checks that a worker whose request is refused
// with Retry-After waits that long before its next request, and that the
// summary counts the refused readings.
func TestRunWaitsAsRefusalsAsk(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"overloaded: requests in flight hold 9 bytes"}`))
	}))
	defer srv.Close()
	const workers = 2
	sum, err := Run(context.Background(), Config{
		Target: srv.URL, Rate: 0, BatchSize: 10, Concurrency: workers, Duration: 1500 * time.Millisecond, Seed: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, sum)
	if sum.Sent == 0 || sum.Refused != sum.Sent || sum.Errors != sum.Sent {
		t.Fatalf("summary %v: every reading should be refused and counted as such", sum)
	}
	// Unpaced, a worker that did not wait would send hundreds of requests
	// in 1.5 s; one that waits 1 s after each sends 2.
	if n := requests.Load(); n > 3*workers {
		t.Fatalf("%d requests from %d workers in 1.5 s with Retry-After 1: the workers did not wait", n, workers)
	}
}
