package e2e

import (
	"testing"
	"time"
)

// TestRestartExact sends readings over HTTP in three phases with a SIGTERM
// and a kill -9 between them, and checks that the stored window results
// equal a batch computation over every reading: nothing lost, nothing twice.
// The first life runs one worker per stage, the later ones two: the second
// worker's transactions are fenced at the restart after the kill as the
// first's are.
func TestRestartExact(t *testing.T) {
	base := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	rs := generate(7, "rs", 30, 3, base, 5*time.Minute, 3*time.Second, 500*time.Millisecond)
	want := oracle(rs)
	third := len(rs) / 3
	// Split on jitter bucket boundaries so that later phases never reach
	// back behind the watermark of earlier ones.
	cut := func(i int) int {
		for i < len(rs) && rs[i].ts.Truncate(500*time.Millisecond).Equal(rs[i-1].ts.Truncate(500*time.Millisecond)) {
			i++
		}
		return i
	}
	c1, c2 := cut(third), cut(2*third)
	phases := [][]reading{rs[:c1], rs[c1:c2], rs[c2:]}

	in := newInstance(t)
	p := in.start(t)
	send := func(p *proc, batch []reading) {
		for i := 0; i < len(batch); i += 250 {
			j := min(i+250, len(batch))
			code, ir, raw := p.post(ndjson(batch[i:j]), "application/x-ndjson")
			if code != 200 || ir.Accepted != j-i {
				t.Fatalf("ingest: %d %s", code, raw)
			}
		}
	}
	send(p, phases[0])
	p.stop()

	in.extra = append(in.extra, "--workers", "2")
	p = in.start(t)
	send(p, phases[1])
	// Crash once the pipeline has processed part of the phase.
	waitMetric(t, p, `pulse_pipeline_events_total{pipeline="city"}`, float64(len(phases[1])/2))
	p.kill()

	p = in.start(t)
	send(p, phases[2])
	end := base.Add(5 * time.Minute)
	send(p, []reading{sentinel("rs", end.Add(time.Minute))})
	query := "to=" + end.Format(time.RFC3339)
	rows := p.waitResults(query, len(want))
	compare(t, rows, want)
	if late := metricValue(t, p, `pulse_late_events_total{pipeline="city"}`); late != "" && late != "0" {
		t.Errorf("late events: %s", late)
	}
	p.stop()

	// Results survive a restart too.
	p = in.start(t)
	compare(t, p.results(query), want)
	p.stop()
}
