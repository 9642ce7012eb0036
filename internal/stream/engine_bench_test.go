package stream

import (
	"fmt"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
)

// BenchmarkEngineAdd measures Engine.Add through the city pipeline's two
// outputs (per sensor and per zone, 1-minute tumbling windows) over 10,000
// sensor keys in 100 zones, with pre-decoded readings. Event time advances
// 0.1 ms per event, as 10,000 sensors reporting once a second would, and
// the engine advances every 10,000 events as a processor does after each
// poll, so windows fire and their state is dropped.
func BenchmarkEngineAdd(b *testing.B) {
	const keys = 10_000
	readings := make([]event.Reading, keys)
	for i := range readings {
		r := &readings[i]
		r.SensorID = fmt.Sprintf("sensor-%05d", i)
		r.Zone = fmt.Sprintf("zone-%02d", i%100)
		r.Kind = event.KindTraffic
		r.Set(event.SpeedKmh, float64(i%120))
		r.Set(event.VehicleCount, float64(i%17))
		r.Set(event.Occupancy, float64(i%100))
	}
	e := NewEngine(City().Outputs, 5000, 30000)
	var finals []Result
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r := &readings[n%keys]
		r.TS = oracleBase + int64(n)/10
		if !e.Add(int32(n%4), r, int64(n)/10_000) {
			b.Fatalf("event %d is late", n)
		}
		n++
		if n%10_000 == 0 {
			finals = e.Advance(int64(n)/10_000, finals[:0])
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(e.OpenWindows()), "open-windows")
}
