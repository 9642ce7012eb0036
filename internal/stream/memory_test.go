package stream

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/event"
)

// BenchmarkStateMemory reports the heap held per open window: the city
// pipeline (45 aggregates per output) with one open one-minute window for
// each of 10,000 sensors and 100 zones.
func BenchmarkStateMemory(b *testing.B) {
	for range b.N {
		plan := testPlan(b, "")
		dec := NewDecoder(plan)
		e := NewEngine(plan, dec)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ts := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC).UnixMilli()
		r := Record{TS: ts, Vals: make([]event.Value, dec.Slots())}
		sensor, zone, speed := dec.Slot("sensor_id"), dec.Slot("zone"), dec.Slot("speed_kmh")
		for i := range 10000 {
			r.Vals[sensor] = event.StringValue("S-" + strconv.Itoa(i))
			r.Vals[zone] = event.StringValue("zone-" + strconv.Itoa(i%100))
			r.Vals[speed] = event.NumberValue(float64(i % 120))
			e.Add(0, &r, 0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		windows := e.OpenWindows()
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(windows), "bytes/window")
		b.ReportMetric(float64(windows), "windows")
		runtime.KeepAlive(e)
	}
}
