package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/telemetry"
)

const baseTS = 1772366400000 // 2026-03-01T12:00:00Z

func cityEvent(id, zone string, ts int64) string {
	return fmt.Sprintf(`{"sensor_id":%q,"zone":%q,"kind":"traffic","ts":%d,"speed_kmh":%d}`, id, zone, ts, 10+ts%100)
}

// events returns n valid events over 5 sensors.
func events(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = cityEvent("s-"+strconv.Itoa(i%5), "zone-0"+strconv.Itoa(i%2), baseTS+int64(i)*1000)
	}
	return out
}

func TestIngestAccepts(t *testing.T) {
	evs := events(12)
	ndjson := []byte(strings.Join(evs, "\n") + "\n")
	tests := []struct {
		name    string
		body    []byte
		headers []string
		n       int
	}{
		{"single object", []byte(evs[0]), nil, 1},
		{"pretty-printed object", []byte("{\n  \"sensor_id\": \"s-0\",\n  \"zone\": \"z\",\n  \"kind\": \"air\",\n  \"ts\": \"2026-03-01T12:00:00Z\",\n  \"pm25\": 3\n}\n"), nil, 1},
		{"array", []byte("[" + strings.Join(evs, ",\n") + "]"), nil, 12},
		{"NDJSON", ndjson, []string{"Content-Type", "application/x-ndjson"}, 12},
		{"NDJSON without content type", ndjson, nil, 12},
		{"gzip NDJSON", gzipBytes(t, ndjson), []string{"Content-Type", "application/x-ndjson", "Content-Encoding", "gzip"}, 12},
		{"gzip array", gzipBytes(t, []byte("["+strings.Join(evs, ",")+"]")), []string{"Content-Encoding", "GZIP"}, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, Config{})
			r := env.post(t, "city", tt.body, tt.headers...)
			if r.code != http.StatusOK || r.resp.Accepted != tt.n || r.resp.Rejected != 0 || r.resp.Failed != 0 {
				t.Fatalf("answer %d %s, want 200 with %d accepted", r.code, r.raw, tt.n)
			}
			if !strings.Contains(r.raw, `"errors":[]`) {
				t.Errorf("answer %s: errors should be an empty array", r.raw)
			}
			if got := env.endOffsets(t, "city", "city.dlq"); got["city"] != int64(tt.n) || got["city.dlq"] != 0 {
				t.Fatalf("topic record counts %v, want city=%d city.dlq=0", got, tt.n)
			}
			partOf := map[string]int32{}
			for _, rec := range env.consume(t, "city", tt.n) {
				var ev struct {
					SensorID string `json:"sensor_id"`
					TS       any    `json:"ts"`
				}
				if err := json.Unmarshal(rec.Value, &ev); err != nil {
					t.Fatalf("record value %q: %v", rec.Value, err)
				}
				if string(rec.Key) != ev.SensorID {
					t.Errorf("record key %q, want the sensor_id %q", rec.Key, ev.SensorID)
				}
				if p, ok := partOf[ev.SensorID]; ok && p != rec.Partition {
					t.Errorf("sensor %s in partitions %d and %d", ev.SensorID, p, rec.Partition)
				}
				partOf[ev.SensorID] = rec.Partition
			}
			if got := env.handler.Accepted(); got != uint64(tt.n) {
				t.Errorf("Accepted() = %d, want %d", got, tt.n)
			}
		})
	}
}

// TestIngestOldEventTimes is a regression test: records were stamped with
// the event time, and franz-go measures RecordDeliveryTimeout from the
// record timestamp, so every event older than the timeout failed with 503.
func TestIngestOldEventTimes(t *testing.T) {
	env := newTestEnv(t, Config{ProduceTimeout: 5 * time.Second}, kgo.RecordDeliveryTimeout(5*time.Second))
	body := cityEvent("s-1", "z", 1577836800000) + "\n" + // 2020-01-01
		`{"sensor_id":"s-2","zone":"z","kind":"air","ts":"2001-09-09T01:46:40Z","pm25":1}`
	r := env.post(t, "city", []byte(body))
	if r.code != http.StatusOK || r.resp.Accepted != 2 {
		t.Fatalf("answer %d %s, want 200 with 2 accepted", r.code, r.raw)
	}
}

func TestIngestRejectsToDLQ(t *testing.T) {
	lines := []string{
		cityEvent("s-1", "z", baseTS),
		`{"sensor_id":"s-2","zone":"z","kind":"bus","ts":1772366400000,"speed_kmh":1}`,
		cityEvent("s-2", "z", baseTS+1),
		`{"sensor_id":"s-3","zone":"z","kind":"traffic","ts":1772366400000,"speed_kmh":999}`,
		`{"sensor_id":"s-4","zone":"z","kind":"traffic","speed_kmh":1}`,
		cityEvent("s-1", "z", baseTS+2),
		`[1]`,
		// Not UTF-8 in a field the city schema does not read: the
		// stages would decode it, so ingest refuses it too.
		"{\"sensor_id\":\"s-5\",\"zone\":\"z\",\"kind\":\"traffic\",\"ts\":1772366400000,\"speed_kmh\":1,\"note\":\"\xff\"}",
	}
	wantErr := map[int]string{1: `kind "bus" is unknown`, 3: "speed_kmh = 999 is outside [0, 300]", 4: "missing field ts", 6: "must be a JSON object", 7: "UTF-8"}
	for _, tc := range []struct {
		name     string
		body     string
		ct       string
		withLine bool
	}{
		{"NDJSON", strings.Join(lines, "\r\n"), "application/x-ndjson", true},
		{"array", "[" + strings.Join(lines, ",") + "]", "application/json", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, Config{Metrics: telemetry.New()})
			r := env.post(t, "city", []byte(tc.body), "Content-Type", tc.ct)
			if r.code != http.StatusOK || r.resp.Accepted != 3 || r.resp.Rejected != 5 || r.resp.Failed != 0 {
				t.Fatalf("answer %d %s, want 200 with 3 accepted and 5 rejected", r.code, r.raw)
			}
			if len(r.resp.Errors) != len(wantErr) {
				t.Fatalf("errors %+v, want %d", r.resp.Errors, len(wantErr))
			}
			reasons := map[string]string{} // index -> reason
			for _, e := range r.resp.Errors {
				if !strings.Contains(e.Error, wantErr[e.Index]) {
					t.Errorf("error of event %d = %q, want it to contain %q", e.Index, e.Error, wantErr[e.Index])
				}
				if tc.withLine && e.Line != e.Index+1 {
					t.Errorf("error of event %d on line %d, want %d", e.Index, e.Line, e.Index+1)
				}
				reasons[strconv.Itoa(e.Index)] = e.Error
			}
			if got := env.endOffsets(t, "city", "city.dlq"); got["city"] != 3 || got["city.dlq"] != 5 {
				t.Fatalf("topic record counts %v, want city=3 city.dlq=5", got)
			}
			for _, rec := range env.consume(t, "city.dlq", 5) {
				idx, _ := header(rec, "pulse-index")
				reason, ok := header(rec, "pulse-error")
				if !ok || reason == "" || reason != reasons[idx] {
					t.Errorf("dead letter %q: pulse-error %q, want the reason %q of event %s", rec.Value, reason, reasons[idx], idx)
				}
				if stage, _ := header(rec, "pulse-stage"); stage != "ingest" {
					t.Errorf("dead letter pulse-stage %q", stage)
				}
				i, _ := strconv.Atoi(idx)
				if tc.withLine && string(rec.Value) != lines[i] {
					t.Errorf("dead letter value %q, want the event as sent %q", rec.Value, lines[i])
				}
			}
			for outcome, want := range map[string]float64{"accepted": 3, "rejected": 5} {
				var m dto.Metric
				if err := env.metrics.IngestEvents.WithLabelValues("city", outcome).Write(&m); err != nil || m.GetCounter().GetValue() != want {
					t.Errorf("pulse_ingest_events_total{outcome=%s} = %v, want %v", outcome, m.GetCounter().GetValue(), want)
				}
			}
		})
	}
}

func TestIngestBadRequests(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		body    []byte
		headers []string
		code    int
		line    int
		errHas  string
	}{
		{"malformed NDJSON names the line", "city", []byte(strings.Join(events(2), "\n") + "\n{\"sensor_id\":\n" + events(1)[0]),
			[]string{"Content-Type", "application/x-ndjson"}, 400, 3, "line 3: malformed JSON"},
		{"malformed array names the line", "city", []byte("[\n" + events(1)[0] + ",\n{\"a\" 1}\n]"), nil, 400, 3, "line 3: malformed JSON"},
		{"empty body", "city", nil, nil, 400, 1, "empty body"},
		{"body is not gzip", "city", []byte(events(1)[0]), []string{"Content-Encoding", "gzip"}, 400, 0, "gzip"},
		{"unknown stream", "traffic", []byte(events(1)[0]), nil, 404, 0, `unknown stream "traffic": known streams are city`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, Config{})
			r := env.post(t, tt.stream, tt.body, tt.headers...)
			if r.code != tt.code || r.err.Line != tt.line || !strings.Contains(r.err.Error, tt.errHas) {
				t.Fatalf("answer %d %s, want %d on line %d containing %q", r.code, r.raw, tt.code, tt.line, tt.errHas)
			}
			if got := env.endOffsets(t, "city", "city.dlq"); got["city"] != 0 || got["city.dlq"] != 0 {
				t.Fatalf("a bad request produced records: %v", got)
			}
		})
	}
}

func TestIngestMaxBody(t *testing.T) {
	const max = 4096
	// exactly returns NDJSON of exactly n bytes: events padded with spaces.
	exactly := func(n int) []byte {
		b := []byte(strings.Join(events(20), "\n"))
		if len(b) > n {
			b = b[:bytes.LastIndexByte(b[:n], '\n')]
		}
		return append(b, bytes.Repeat([]byte{' '}, n-len(b))...)
	}
	big := []byte(strings.Join(events(200), "\n"))
	if len(gzipBytes(t, big)) >= max || len(big) <= max {
		t.Fatalf("test body sizes: %d plain, %d gzip", len(big), len(gzipBytes(t, big)))
	}
	gz := []string{"Content-Encoding", "gzip"}
	tests := []struct {
		name    string
		body    []byte
		headers []string
		code    int
	}{
		{"plain at the limit", exactly(max), nil, 200},
		{"plain 1 byte over", exactly(max + 1), nil, 413},
		{"plain far over", big, nil, 413},
		{"gzip decompressing to the limit", gzipBytes(t, exactly(max)), gz, 200},
		{"gzip decompressing 1 byte over", gzipBytes(t, exactly(max+1)), gz, 413},
		{"small gzip decompressing far over", gzipBytes(t, big), gz, 413},
	}
	env := newTestEnv(t, Config{MaxBody: max})
	var want int64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.post(t, "city", tt.body, tt.headers...)
			if r.code != tt.code {
				t.Fatalf("answer %d %s, want %d", r.code, r.raw, tt.code)
			}
			if tt.code == 413 && !strings.Contains(r.err.Error, "larger than 4096 bytes") {
				t.Errorf("413 answer %q does not name the limit", r.err.Error)
			}
			if tt.code == 200 {
				want += int64(r.resp.Accepted)
			}
		})
	}
	if got := env.endOffsets(t, "city"); got["city"] != want {
		t.Fatalf("city holds %d records, want the %d of the accepted requests", got["city"], want)
	}
}

// TestIngestBrokerDown checks that a write the broker does not acknowledge
// is answered with 503, Retry-After and nothing counted as accepted.
func TestIngestBrokerDown(t *testing.T) {
	body := []byte(strings.Join(events(3), "\n") + "\n{\"sensor_id\":\"s\",\"zone\":\"z\",\"kind\":\"bus\",\"ts\":1,\"speed_kmh\":1}\n")
	cfg := Config{ProduceTimeout: time.Second}
	deliveryTimeout := kgo.RecordDeliveryTimeout(time.Second)
	tests := []struct {
		name  string
		setup func(t *testing.T) *testEnv
	}{
		{"cluster closed after a successful request", func(t *testing.T) *testEnv {
			env := newTestEnv(t, cfg, deliveryTimeout)
			if r := env.post(t, "city", body); r.code != 200 {
				t.Fatalf("warm-up answer %d %s", r.code, r.raw)
			}
			env.cluster.Close()
			return env
		}},
		{"broker never reachable", func(t *testing.T) *testEnv {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			return newTestEnv(t, cfg, deliveryTimeout, kgo.SeedBrokers(addr))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.setup(t)
			before := env.handler.Accepted()
			r := env.post(t, "city", body, "Content-Type", "application/x-ndjson")
			if r.code != http.StatusServiceUnavailable || r.resp.Accepted != 0 || r.resp.Failed == 0 {
				t.Fatalf("answer %d %s, want 503 with accepted 0", r.code, r.raw)
			}
			if ra := r.header.Get("Retry-After"); ra == "" {
				t.Error("503 without Retry-After")
			}
			// Events 0-2 are valid: any error reported for them is the
			// failed write.
			failed := map[int]bool{}
			for _, e := range r.resp.Errors {
				if e.Error != "" {
					failed[e.Index] = true
				}
			}
			for i := range 3 {
				if !failed[i] {
					t.Errorf("valid event %d is not reported as not stored: %s", i, r.raw)
				}
			}
			if env.handler.Accepted() != before {
				t.Errorf("Accepted() moved from %d to %d", before, env.handler.Accepted())
			}
		})
	}
}
