package e2e

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
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

// spikesPipeline is the other second level: a z-score detector over each
// zone's readings per minute.
const spikesPipeline = `
name: spikes
description: Minutes whose reading count stands out from the zone's recent ones.
source: {pipeline: city, output: zone_1m}
event_time:
  idle_timeout: 2s
outputs:
  - name: count_spikes
    group_by: [zone]
    detect:
      detector: zscore
      fields: [count, pm25_max]
      alpha: 0.3
      threshold: 1.0
      warm_up: 3
`

// zone5 is the expected result of one zone's five minutes.
type zone5 struct {
	readings, minutes, busiest int
	pm25Peak                   float64
}

// TestDAGCrashExact runs a two-level pipeline graph (readings → per-zone
// minutes → five-minute totals over those minutes, and a spike detector
// over them) under load and kill -9s Pulse five times while both levels
// work. The second level's stored results must equal a batch computation
// over every reading, row for row.
func TestDAGCrashExact(t *testing.T) {
	total, kills := 300_000, 5
	if testing.Short() {
		total = 60_000
	}
	dir := t.TempDir()
	for name, src := range map[string]string{"zones.yaml": zonesPipeline, "spikes.yaml": spikesPipeline} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
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
	checkSpikes(t, p, feed.want, end)
	for _, name := range []string{"zones", "spikes"} {
		if late := metricValue(t, p, `pulse_late_events_total{pipeline="`+name+`"}`); late != "" && late != "0" {
			t.Errorf("late rows in the second level %s: %s", name, late)
		}
	}
	p.stop()
}

// checkSpikes compares the spike detector's stored rows with the z-score
// computed over each zone's minutes in time order (the batch oracle of
// the detector, as docs/pipelines.md defines it).
func checkSpikes(t *testing.T, p *proc, want map[string]*aggregate, end time.Time) {
	t.Helper()
	type point struct {
		at   time.Time
		vals [2]float64 // count, pm25_max
	}
	series := map[string][]point{}
	for k, a := range want {
		parts := strings.Split(k, "|") // output|zone=z|window_start
		if parts[0] != "zone_1m" {
			continue
		}
		at, err := time.Parse(time.RFC3339, parts[2])
		if err != nil {
			t.Fatal(err)
		}
		zone := strings.TrimPrefix(parts[1], "zone=")
		series[zone] = append(series[zone], point{at, [2]float64{float64(a.count), a.max["pm25"]}})
	}
	const alpha, threshold, warmUp = 0.3, 1.0, 3
	fields := [2]string{"count", "pm25_max"}
	spikes := map[string][3]float64{} // zone|time|field → mean, stddev, z
	for zone, pts := range series {
		slices.SortFunc(pts, func(a, b point) int { return a.at.Compare(b.at) })
		for f, field := range fields {
			var n, mean, variance float64
			for _, pt := range pts {
				x := pt.vals[f]
				if sd := math.Sqrt(variance); n >= warmUp && sd > 0 {
					if z := (x - mean) / sd; math.Abs(z) >= threshold {
						spikes[zone+"|"+pt.at.Format(time.RFC3339)+"|"+field] = [3]float64{mean, sd, z}
					}
				} else if n >= warmUp && x != mean {
					spikes[zone+"|"+pt.at.Format(time.RFC3339)+"|"+field] = [3]float64{mean, 0, 0} // no z: null
				}
				if n == 0 {
					mean = x
				} else {
					d := x - mean
					mean += alpha * d
					variance = (1 - alpha) * (variance + alpha*d*d)
				}
				n++
			}
		}
	}
	if len(spikes) == 0 {
		t.Fatal("the oracle finds no spike: lower the threshold so that the test checks something")
	}
	t.Logf("the oracle finds %d spikes over %d zones", len(spikes), len(series))
	rows := waitRows(t, p, "spikes", "to="+end.Format(time.RFC3339)+"&limit=10000", len(spikes))
	seen := map[string]bool{}
	for _, r := range rows {
		key, _ := r["key"].(map[string]any) // a detect row's key: the zone and the field
		zone, _ := key["zone"].(string)
		at, _ := r["time"].(string)
		ts, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			t.Fatalf("row %v: time: %v", r, err)
		}
		field, _ := key["field"].(string)
		k := zone + "|" + ts.UTC().Format(time.RFC3339) + "|" + field
		if seen[k] {
			t.Errorf("spike %s appears twice", k)
		}
		seen[k] = true
		w, ok := spikes[k]
		if !ok {
			t.Errorf("unexpected spike %s: %v", k, r)
			continue
		}
		if num(r["mean"]) != w[0] || num(r["stddev"]) != w[1] || num(r["z"]) != w[2] {
			t.Errorf("spike %s: %v, want mean %v stddev %v z %v", k, r, w[0], w[1], w[2])
		}
	}
	for k := range spikes {
		if !seen[k] {
			t.Errorf("missing spike %s", k)
		}
	}
}

// num reads a JSON number of a result row (0 for anything else).
func num(v any) float64 {
	f, _ := v.(float64)
	return f
}
