package e2e

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// zonesPipeline reads the city pipeline's per-zone minutes: a second level
// of the pipeline graph.
const zonesPipeline = `
name: zones
description: Five-minute totals of the city's per-zone minutes.
source: {pipeline: city, output: zone_1m}
event_time:
  idle_timeout: 2s   # the sentinel's row moves one partition: the others go idle soon
outputs:
  - name: zone_5m
    group_by: [zone]
    window: {tumbling: 5m}
    aggregates:
      readings: sum(count)
      minutes: count()
      busiest_minute: max(count)
      pm25_peak: max(pm25_max)
`

// zone5 is the expected result of one zone's five minutes.
type zone5 struct {
	readings, minutes, busiest int
	pm25Peak                   float64
}

// TestDAGCrashExact runs a two-level pipeline graph (readings → per-zone
// minutes → five-minute totals over those minutes) under load and kill -9s
// Pulse five times while both levels work. The second level's stored
// results must equal a batch computation over every reading, row for row.
func TestDAGCrashExact(t *testing.T) {
	total, kills := 300_000, 5
	if testing.Short() {
		total = 60_000
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "zones.yaml"), []byte(zonesPipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	base := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	// 4 ms of event time per reading: 20 minutes over 300,000 readings.
	feed := &airFeed{prefix: "dg", sensors: 400, zones: 12, base: base, step: 4 * time.Millisecond, rng: rng, want: map[string]*aggregate{}}
	in := newInstance(t, "--pipelines", dir)
	in.bin = pulseFastBin
	p := in.start(t)
	chunk := total / kills
	for k := range kills {
		feed.post(p, k*chunk, min((k+1)*chunk, total))
		time.Sleep(time.Duration(rng.IntN(700)) * time.Millisecond)
		p.kill()
		p = in.start(t)
	}
	end := feed.maxTS.Truncate(5 * time.Minute).Add(5 * time.Minute)
	// The first sentinel makes every minute up to end final in the city
	// pipeline; the second makes the sentinel's own minute final, whose
	// row moves the second level's watermark past end.
	p.mustPost([]byte(sentinel("dg", end.Add(time.Minute)).json()))
	p.mustPost([]byte(sentinel("dg", end.Add(3*time.Minute)).json()))

	// The city's row of the sentinel's minute is what moves the second
	// level past end: wait for it first (the city pipeline's other
	// partitions go idle after its idle_timeout of 30 s).
	p.waitResults("output=zone_1m&from="+end.Add(time.Minute).Format(time.RFC3339)+"&to="+end.Add(2*time.Minute).Format(time.RFC3339), 1)

	want := map[string]*zone5{}
	for k, a := range feed.want {
		parts := strings.Split(k, "|") // output|zone=z|window_start
		if parts[0] != "zone_1m" {
			continue
		}
		start, err := time.Parse(time.RFC3339, parts[2])
		if err != nil {
			t.Fatal(err)
		}
		key := "zone_5m|" + parts[1] + "|" + start.Truncate(5*time.Minute).Format(time.RFC3339)
		z := want[key]
		if z == nil {
			z = &zone5{}
			want[key] = z
		}
		z.readings += a.count
		z.minutes++
		z.busiest = max(z.busiest, a.count)
		z.pm25Peak = max(z.pm25Peak, a.max["pm25"])
	}
	rows := waitRows(t, p, "zones", "to="+end.Format(time.RFC3339)+"&limit=10000", len(want))
	seen := map[string]bool{}
	for _, r := range rows {
		k := r.key()
		if seen[k] {
			t.Errorf("result %s appears twice", k)
		}
		seen[k] = true
		z := want[k]
		if z == nil {
			t.Errorf("unexpected result %s: %v", k, r)
			continue
		}
		if got := int(num(r["readings"])); got != z.readings {
			t.Errorf("%s: readings %d, want %d", k, got, z.readings)
		}
		if got := int(num(r["minutes"])); got != z.minutes {
			t.Errorf("%s: minutes %d, want %d", k, got, z.minutes)
		}
		if got := int(num(r["busiest_minute"])); got != z.busiest {
			t.Errorf("%s: busiest_minute %d, want %d", k, got, z.busiest)
		}
		if got := num(r["pm25_peak"]); got != z.pm25Peak {
			t.Errorf("%s: pm25_peak %v, want %v", k, got, z.pm25Peak)
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("missing result %s", k)
		}
	}
	if late := metricValue(t, p, `pulse_late_events_total{pipeline="zones"}`); late != "" && late != "0" {
		t.Errorf("late rows in the second level: %s", late)
	}
	p.stop()
}

// num reads a JSON number of a result row (0 for anything else).
func num(v any) float64 {
	f, _ := v.(float64)
	return f
}
