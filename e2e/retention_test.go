package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/checkfor"
)

const tempsPipeline = `
name: temps
source: {topic: temps, key: id, time: {field: at, format: epoch_ms}}
outputs:
  - name: t_1m
    group_by: [id]
    window: {tumbling: 1m}
    aggregates: {n: count()}
    retention: 1h
`

// TestRetention stores three minutes of results from three hours ago and
// one from two minutes ago in an output that keeps its results an hour:
// the retention deletes the old ones (and counts them), the recent one
// stays.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "temps.yaml"), []byte(tempsPipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newInstance(t, "--pipelines", dir, "--builtin=false", "--sink-retention-interval", "500ms").start(t)
	now := time.Now().Truncate(time.Minute)
	old := now.Add(-3 * time.Hour)
	ev := func(id string, at time.Time) string { return fmt.Sprintf(`{"id":%q,"at":%d}`, id, at.UnixMilli()) }
	events := []string{ev("a", old), ev("a", old.Add(time.Minute)), ev("a", old.Add(2*time.Minute)), ev("b", now.Add(-2*time.Minute)), ev("c", now.Add(time.Second))}
	if code, ir, raw := p.postTo("temps", []byte(strings.Join(events, "\n")), "application/x-ndjson"); code != 200 || ir.Accepted != len(events) {
		t.Fatalf("ingest: %d %s", code, raw)
	}
	waitMetric(t, p, `pulse_sink_expired_rows_total{output="t_1m",pipeline="temps"}`, 3)
	checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		rows := p.pipelineResults("temps", "output=t_1m&to="+now.Format(time.RFC3339))
		if len(rows) != 1 || rows[0]["key"].(map[string]any)["id"] != "b" {
			return fmt.Errorf("stored results before %s: %v; want b's minute only", now.Format(time.RFC3339), rows)
		}
		return nil
	})
	if v := metricValue(t, p, `pulse_sink_expired_rows_total{output="t_1m",pipeline="temps"}`); v != "3" {
		t.Errorf("pulse_sink_expired_rows_total = %s, want 3", v)
	}
	p.stop()
}
