package stream

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/pipelines"
)

// benchPipeline is one output: per sensor, 1-minute tumbling windows, the
// count and the avg, min and max of one field.
const benchPipeline = `
name: bench
source: {topic: t, key: sensor_id, time: {field: ts}}
outputs:
  - name: sensor_1m
    group_by: [sensor_id]
    window: {tumbling: 1m}
    aggregates:
      count: count()
      speed_kmh_avg: avg(speed_kmh)
      speed_kmh_min: min(speed_kmh)
      speed_kmh_max: max(speed_kmh)
`

// cityReading is a traffic reading of sensor i as senders post it.
func cityReading(i int, ts int64) []byte {
	return fmt.Appendf(nil, `{"sensor_id":"sensor-%05d","zone":"zone-%02d","kind":"traffic","ts":%d,"speed_kmh":%d,"vehicle_count":%d,"occupancy":%d}`,
		i, i%100, ts, i%120, i%17, i%100)
}

// benchAdd measures Engine.Add over 10,000 sensor keys with records
// decoded beforehand. Event time advances 0.1 ms per event, as 10,000
// sensors reporting once a second would, over 4 partitions; the engine
// advances every 10,000 events, as a window task does at its markers, so
// windows fire and their state is dropped.
func benchAdd(b *testing.B, plan *pipeline.Plan) {
	const keys = 10_000
	dec := NewDecoder(plan)
	recs := make([]Record, keys)
	for i := range recs {
		if err := dec.Decode(cityReading(i, oracleBase), &recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	e := NewEngine(plan, dec)
	var results []Result
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r := &recs[n%keys]
		r.TS = oracleBase + int64(n)/10
		if e.Add(int32(n%4), r, int64(n)/10_000) != 0 {
			b.Fatalf("event %d is late", n)
		}
		n++
		if n%10_000 == 0 {
			results = e.Advance(int64(n)/10_000, results[:0], 0)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(e.OpenWindows()), "open-windows")
}

// BenchmarkEngineAdd: one output, four aggregates of one field.
func BenchmarkEngineAdd(b *testing.B) { benchAdd(b, testPlan(b, benchPipeline)) }

// BenchmarkEngineAddCity: the built-in city pipeline, two outputs (per
// sensor and per zone) of 45 aggregates each.
func BenchmarkEngineAddCity(b *testing.B) { benchAdd(b, testPlan(b, "")) }

// BenchmarkDecode measures the Decoder on a city reading: the built-in
// city pipeline (schema check, no where or derive), the same without the
// schema, and with a where and two derived fields, one aggregated.
func BenchmarkDecode(b *testing.B) {
	city, err := pipelines.FS.ReadFile("city.yaml")
	if err != nil {
		b.Fatal(err)
	}
	noSchema := strings.Replace(string(city), "  schema: city", "  # schema: city", 1)
	whereDerive := strings.Replace(noSchema, "\noutputs:\n", `
where: 'kind != "test" && speed_ms >= 0.0'
derive:
  speed_ms: 'speed_kmh / 3.6'
  fast: 'speed_ms > 20.0'
outputs:
`, 1)
	whereDerive = strings.Replace(whereDerive, "      speed_kmh_max: max(speed_kmh)\n", "      speed_kmh_max: max(speed_kmh)\n      speed_ms_avg: avg(speed_ms)\n", 1)
	for _, bc := range []struct{ name, yaml string }{
		{"city", string(city)},
		{"city-no-schema", noSchema},
		{"where-derive", whereDerive},
	} {
		b.Run(bc.name, func(b *testing.B) {
			plan := testPlan(b, bc.yaml)
			if (bc.name == "where-derive") != (plan.Where != nil && len(plan.Derive) == 2) {
				b.Fatalf("the pipeline has where %v and %d derived fields", plan.Where != nil, len(plan.Derive))
			}
			dec := NewDecoder(plan)
			data := cityReading(42, oracleBase)
			var r Record
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := dec.Decode(data, &r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkAppendSnapshotCity measures encoding a window task's state for
// its changelog, as a checkpoint does for every group that changed: the
// city pipeline's two outputs with 10,000 sensors (100 zones) holding one
// reading each in their open window.
func BenchmarkAppendSnapshotCity(b *testing.B) {
	const keys = 10_000
	plan := testPlan(b, "")
	dec := NewDecoder(plan)
	e := NewEngine(plan, dec)
	e.EnableChangelog()
	var r Record
	for i := range keys {
		if err := dec.Decode(cityReading(i, oracleBase), &r); err != nil {
			b.Fatal(err)
		}
		if e.Add(0, &r, 0) != 0 {
			b.Fatalf("event %d is late", i)
		}
	}
	var changes []Change
	b.ReportAllocs()
	for b.Loop() {
		changes = appendSnapshot(e, changes[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*e.Groups()), "ns/group")
}
