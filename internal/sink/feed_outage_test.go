package sink

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pulsehq/pulse/internal/telemetry"
)

// TestOutageLogsOnce fails a feed 5 times in a row, then lets it work:
// one line when the outage begins, one when it ends, the failures
// counted, pulse_sink_up 0 during the outage and 1 after.
func TestOutageLogsOnce(t *testing.T) {
	var buf bytes.Buffer
	m := telemetry.New()
	clock := time.Unix(0, 0)
	o := &outage{name: "postgres", log: slog.New(slog.NewTextHandler(&buf, nil)), metrics: m, now: func() time.Time { return clock }}
	o.ok()
	for i := range 5 {
		o.failed(errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"))
		if i == 0 {
			if up := testutil.ToFloat64(m.SinkUp.WithLabelValues("postgres")); up != 0 {
				t.Errorf("pulse_sink_up during the outage = %v, want 0", up)
			}
		}
		clock = clock.Add(4 * time.Second)
	}
	o.ok()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=ERROR") || !strings.Contains(lines[0], "connection refused") ||
		!strings.Contains(lines[1], "works again") || !strings.Contains(lines[1], "down_for=20s") || !strings.Contains(lines[1], "retries=4") {
		t.Fatalf("log of a 20 s outage:\n%s\nwant one error line and one line saying it works again after 20s and 4 retries", buf.String())
	}
	if n := testutil.ToFloat64(m.SinkFailures.WithLabelValues("postgres")); n != 5 {
		t.Errorf("pulse_sink_failures_total = %v, want 5", n)
	}
	if up := testutil.ToFloat64(m.SinkUp.WithLabelValues("postgres")); up != 1 {
		t.Errorf("pulse_sink_up after = %v, want 1", up)
	}
}
