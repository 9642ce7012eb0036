package e2e

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"
	"time"
)

// reading is one generated city reading.
type reading struct {
	sensor, zone, kind string
	ts                 time.Time
	metrics            map[string]float64
}

func (r reading) json() string {
	s := fmt.Sprintf(`{"sensor_id":%q,"zone":%q,"kind":%q,"ts":%q`, r.sensor, r.zone, r.kind, r.ts.UTC().Format(time.RFC3339Nano))
	names := make([]string, 0, len(r.metrics))
	for k := range r.metrics {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		s += fmt.Sprintf(`,%q:%s`, k, strconv.FormatFloat(r.metrics[k], 'f', -1, 64))
	}
	return s + "}"
}

var kindMetrics = map[string][]string{
	"traffic": {"speed_kmh", "vehicle_count", "occupancy"},
	"air":     {"pm25", "pm10", "no2", "o3"},
	"weather": {"temp_c", "humidity", "wind_ms", "rain_mm"},
}

// generate makes readings from sensors every step over span starting at
// base, shuffled within buckets of jitter so that arrival order is out of
// event-time order by less than jitter.
func generate(seed uint64, prefix string, sensors, zones int, base time.Time, span, step, jitter time.Duration) []reading {
	rng := rand.New(rand.NewPCG(seed, 1))
	kinds := []string{"traffic", "air", "weather"}
	var out []reading
	for t := time.Duration(0); t < span; t += step {
		for s := 0; s < sensors; s++ {
			kind := kinds[s%3]
			r := reading{
				sensor: fmt.Sprintf("%s-%04d", prefix, s), zone: fmt.Sprintf("%s-zone-%02d", prefix, s%zones), kind: kind,
				ts: base.Add(t + time.Duration(rng.Int64N(int64(step)))), metrics: map[string]float64{},
			}
			for _, m := range kindMetrics[kind] {
				v := math.Round(rng.Float64()*6000) / 100 // 0..60 with 2 decimals, valid for every metric
				if m == "vehicle_count" {
					v = float64(rng.IntN(50))
				}
				r.metrics[m] = v
			}
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ts.Before(out[j].ts) })
	// Shuffle within jitter buckets.
	for i := 0; i < len(out); {
		j := i
		bucket := out[i].ts.Truncate(jitter)
		for j < len(out) && out[j].ts.Truncate(jitter).Equal(bucket) {
			j++
		}
		rng.Shuffle(j-i, func(a, b int) { out[i+a], out[i+b] = out[i+b], out[i+a] })
		i = j
	}
	return out
}

type aggregate struct {
	count         int
	n             map[string]int
	sum, min, max map[string]float64
}

// oracle computes the expected final results of the city pipeline by a
// plain batch computation: key "output|field=value|window_start".
func oracle(rs []reading) map[string]*aggregate {
	out := map[string]*aggregate{}
	for _, r := range rs {
		addOracle(out, r)
	}
	return out
}

// addOracle folds one reading into the expected results.
func addOracle(out map[string]*aggregate, r reading) {
	add := func(key string, r reading) {
		a := out[key]
		if a == nil {
			a = &aggregate{n: map[string]int{}, sum: map[string]float64{}, min: map[string]float64{}, max: map[string]float64{}}
			out[key] = a
		}
		a.count++
		for m, v := range r.metrics {
			if a.n[m] == 0 || v < a.min[m] {
				a.min[m] = v
			}
			if a.n[m] == 0 || v > a.max[m] {
				a.max[m] = v
			}
			a.n[m]++
			a.sum[m] += v
		}
	}
	start := r.ts.UTC().Truncate(time.Minute).Format(time.RFC3339)
	add("sensor_1m|sensor_id="+r.sensor+"|"+start, r)
	add("zone_1m|zone="+r.zone+"|"+start, r)
}

// compare checks API rows against the oracle, row for row.
func compare(t *testing.T, rows []resultRow, want map[string]*aggregate) {
	t.Helper()
	seen := map[string]bool{}
	for _, row := range rows {
		k := row.key()
		if seen[k] {
			t.Errorf("result %s appears twice", k)
		}
		seen[k] = true
		a := want[k]
		if a == nil {
			t.Errorf("unexpected result %s", k)
			continue
		}
		if got := int(row["count"].(float64)); got != a.count {
			t.Errorf("%s: count %d, want %d", k, got, a.count)
		}
		for m, n := range a.n {
			if got := int(row[m+"_count"].(float64)); got != n {
				t.Errorf("%s: %s_count %d, want %d", k, m, got, n)
			}
			if got := row[m+"_min"].(float64); got != a.min[m] {
				t.Errorf("%s: %s_min %v, want %v", k, m, got, a.min[m])
			}
			if got := row[m+"_max"].(float64); got != a.max[m] {
				t.Errorf("%s: %s_max %v, want %v", k, m, got, a.max[m])
			}
			avg := a.sum[m] / float64(n)
			if got := row[m+"_avg"].(float64); math.Abs(got-avg) > 1e-9*math.Max(1, math.Abs(avg)) {
				t.Errorf("%s: %s_avg %v, want %v", k, m, got, avg)
			}
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("missing result %s", k)
		}
	}
}

func ndjson(rs []reading) []byte {
	var b []byte
	for _, r := range rs {
		b = append(b, r.json()...)
		b = append(b, '\n')
	}
	return b
}

// sentinel is a reading well after the end of a test's data: it moves the
// watermark past the last window so that every window of the data becomes
// final. Tests query results with to= the sentinel's window to leave it out.
func sentinel(prefix string, at time.Time) reading {
	return reading{sensor: prefix + "-sentinel", zone: prefix + "-sentinel", kind: "air", ts: at, metrics: map[string]float64{"pm25": 1}}
}

// airFeed generates air readings i = 0, 1, ... for the crash and
// rebalance tests: sensors prefix-0.. spread over zones, event time
// advancing step per reading with up to 400 ms of disorder, and keeps the
// oracle of what it generated.
type airFeed struct {
	prefix         string
	sensors, zones int
	base           time.Time
	step           time.Duration
	rng            *rand.Rand
	want           map[string]*aggregate
	maxTS          time.Time
}

// post sends readings [from, to) to p in bodies of about 1 MiB.
func (f *airFeed) post(p *proc, from, to int) {
	var body []byte
	for i := from; i < to; i++ {
		r := reading{
			sensor: f.prefix + "-" + strconv.Itoa(i%f.sensors), zone: f.prefix + "-zone-" + strconv.Itoa(i%f.sensors%f.zones), kind: "air",
			ts:      f.base.Add(time.Duration(i)*f.step - time.Duration(f.rng.IntN(400))*time.Millisecond),
			metrics: map[string]float64{"pm25": float64(f.rng.IntN(5000)) / 10},
		}
		if r.ts.After(f.maxTS) {
			f.maxTS = r.ts
		}
		addOracle(f.want, r)
		body = append(body, r.json()...)
		body = append(body, '\n')
		if len(body) > 1<<20 {
			p.mustPost(body)
			body = body[:0]
		}
	}
	if len(body) > 0 {
		p.mustPost(body)
	}
}
