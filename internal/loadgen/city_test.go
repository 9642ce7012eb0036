package loadgen

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/event"
)

// weekday is a Tuesday, local hours in UTC.
var weekday = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// readings generates n readings at clock now and decodes them, failing the
// test on any invalid one.
func readings(t testing.TB, c *City, n int, now time.Time) []event.Reading {
	t.Helper()
	var p event.CityParser
	out := make([]event.Reading, n)
	var buf []byte
	for i := range n {
		buf = c.Append(buf[:0], now)
		if len(buf) == 0 || buf[len(buf)-1] != '\n' || bytes.Count(buf, []byte("\n")) != 1 {
			t.Fatalf("reading %q is not one NDJSON line", buf)
		}
		if err := p.Parse(buf[:len(buf)-1], &out[i]); err != nil {
			t.Fatalf("reading %s does not validate: %v", buf, err)
		}
		r := &out[i]
		if nowMs := now.UnixMilli(); r.TS > nowMs || r.TS < nowMs-2000 {
			t.Fatalf("reading %s: ts %d not within 2 s before now %d", buf, r.TS, nowMs)
		}
	}
	return out
}

func TestCityReadingsValidate(t *testing.T) {
	idRE := regexp.MustCompile(`^S-\d{4}$`)
	zoneRE := regexp.MustCompile(`^zone-\d{2}$`)
	for seed := int64(1); seed <= 6; seed++ {
		c := NewCity(seed, 300, 20)
		c.AnomalyRate = 0.02 // anomalies must be valid readings too
		kinds := map[string]event.Kind{}
		for step := range 48 {
			now := weekday.Add(time.Duration(seed)*37*time.Hour + time.Duration(step)*31*time.Minute + 123*time.Millisecond)
			for _, r := range readings(t, c, 200, now) {
				if !idRE.MatchString(r.SensorID) || !zoneRE.MatchString(r.Zone) {
					t.Fatalf("bad sensor %q or zone %q", r.SensorID, r.Zone)
				}
				if k, ok := kinds[r.SensorID]; ok && k != r.Kind {
					t.Fatalf("sensor %s changed kind from %v to %v", r.SensorID, k, r.Kind)
				}
				kinds[r.SensorID] = r.Kind
			}
		}
		if len(kinds) != 300 {
			t.Fatalf("seed %d: %d sensors reported, want 300", seed, len(kinds))
		}
	}
	// A local zone far from UTC and epoch-ms timestamps parse too.
	c := NewCity(9, 50, 3)
	readings(t, c, 500, time.Now().In(time.FixedZone("X", -11*3600)))
}

func TestCityKindMix(t *testing.T) {
	for _, tc := range []struct{ sensors, zones int }{{1000, 20}, {60, 20}, {7, 2}, {1, 1}} {
		c := NewCity(1, tc.sensors, tc.zones)
		count := map[event.Kind]int{}
		zoneKinds := map[string]map[event.Kind]bool{}
		for _, r := range readings(t, c, tc.sensors, weekday) {
			count[r.Kind]++
			if zoneKinds[r.Zone] == nil {
				zoneKinds[r.Zone] = map[event.Kind]bool{}
			}
			zoneKinds[r.Zone][r.Kind] = true
		}
		if tc.sensors >= 3*tc.zones {
			if len(zoneKinds) != tc.zones {
				t.Errorf("%+v: %d zones have sensors, want %d", tc, len(zoneKinds), tc.zones)
			}
			for z, ks := range zoneKinds {
				if len(ks) != 3 {
					t.Errorf("%+v: zone %s has kinds %v, want all three", tc, z, ks)
				}
			}
		}
		if tc.sensors == 1000 && (count[event.KindTraffic] != 500 || math.Abs(float64(count[event.KindAir]-250)) > 12 || math.Abs(float64(count[event.KindWeather]-250)) > 12) {
			t.Errorf("kind mix %v, want 500 traffic, about 250 air and 250 weather", count)
		}
	}
}

func TestCityDeterministic(t *testing.T) {
	gen := func(seed int64) []byte {
		c := NewCity(seed, 100, 5)
		var buf []byte
		for i := range 5000 {
			buf = c.Append(buf, weekday.Add(time.Duration(i)*7*time.Millisecond))
		}
		return buf
	}
	if a, b := gen(42), gen(42); !bytes.Equal(a, b) {
		t.Fatal("same seed gave different readings")
	}
	if a, b := gen(42), gen(43); bytes.Equal(a, b) {
		t.Fatal("different seeds gave the same readings")
	}
}

// mean averages metric m over n readings at local hour h of day.
func mean(t *testing.T, day time.Time, h float64, m event.Metric) float64 {
	t.Helper()
	c := NewCity(7, 400, 10)
	c.AnomalyRate = 0
	now := day.Add(time.Duration(h * float64(time.Hour)))
	var sum float64
	var n int
	for _, r := range readings(t, c, 4000, now) {
		if r.HasMetric(m) {
			sum += r.Values[m]
			n++
		}
	}
	if n == 0 {
		t.Fatalf("no %v readings", m)
	}
	return sum / float64(n)
}

func TestCityDailyPatterns(t *testing.T) {
	type cmp struct {
		m          event.Metric
		low, high  float64 // hours where the mean should be lower, higher
		what       string
		minPercent float64 // how much higher, at least
	}
	for _, tc := range []cmp{
		{event.SpeedKmh, 8.25, 3, "rush-hour speed below night speed", 20},
		{event.SpeedKmh, 17.5, 3, "evening rush speed below night speed", 20},
		{event.VehicleCount, 3, 8.25, "more vehicles at rush hour", 100},
		{event.Occupancy, 3, 17.5, "higher occupancy at rush hour", 100},
		{event.NO2, 3, 8.25, "no2 follows traffic", 50},
		{event.PM25, 3, 17.5, "pm25 follows traffic", 20},
		{event.TempC, 5, 15, "warmest at 15:00, coldest at 05:00", 0},
		{event.Humidity, 15, 5, "humidity inverse to temperature", 20},
	} {
		lo, hi := mean(t, weekday, tc.low, tc.m), mean(t, weekday, tc.high, tc.m)
		if !(hi > lo) || (tc.minPercent > 0 && hi < lo*(1+tc.minPercent/100)) {
			t.Errorf("%s: %v at %.2fh = %.2f, at %.2fh = %.2f", tc.what, tc.m, tc.low, lo, tc.high, hi)
		}
	}
	// Temperature: 15:00 warmer than 05:00 by a few degrees.
	if d := mean(t, weekday, 15, event.TempC) - mean(t, weekday, 5, event.TempC); d < 4 || d > 16 {
		t.Errorf("diurnal temperature range %.1f °C, want a few degrees", d)
	}
}

func TestCityAnomalyRate(t *testing.T) {
	const n, rate = 200_000, 0.01
	c := NewCity(3, 1000, 20)
	c.AnomalyRate = rate
	var p event.CityParser
	var r event.Reading
	var buf []byte
	collapses, spikes, storms := 0, 0, 0
	for i := range n {
		buf = c.Append(buf[:0], weekday.Add(time.Duration(i)*time.Millisecond))
		if err := p.Parse(buf, &r); err != nil {
			t.Fatalf("%s: %v", buf, err)
		}
		switch {
		case r.Kind == event.KindTraffic && r.Values[event.SpeedKmh] < 4.05 && r.Values[event.Occupancy] >= 96:
			collapses++
		case r.Kind == event.KindAir && r.Values[event.PM25] >= 300:
			spikes++
		case r.Kind == event.KindWeather && r.Values[event.WindMs] >= 32:
			storms++
		}
	}
	want := n * rate
	if got := float64(c.Anomalies()); math.Abs(got-want) > want*0.15 {
		t.Fatalf("%v anomalies in %d readings, want about %v", got, n, want)
	}
	// Half the readings are traffic, a quarter each air and weather.
	for _, x := range []struct {
		name      string
		got       int
		wantShare float64
	}{{"speed collapses", collapses, 0.5}, {"pm25 spikes", spikes, 0.25}, {"storms", storms, 0.25}} {
		w := want * x.wantShare
		if math.Abs(float64(x.got)-w) > w*0.25 {
			t.Errorf("%d %s, want about %.0f", x.got, x.name, w)
		}
	}
}

func TestCityAppendAllocs(t *testing.T) {
	c := NewCity(1, 1000, 20)
	buf := make([]byte, 0, 4096)
	now := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		buf = c.Append(buf[:0], now)
	})
	if allocs != 0 {
		t.Fatalf("Append allocates %v times per reading", allocs)
	}
}

func BenchmarkCityAppend(b *testing.B) {
	c := NewCity(1, 1000, 20)
	buf := make([]byte, 0, 4096)
	now := time.Now()
	b.SetBytes(int64(len(c.Append(buf, now))))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 {
			now = now.Add(time.Second / 2)
		}
		buf = c.Append(buf[:0], now)
	}
}

// The output is deterministic for a seed and clock, but it is not pinned
// here: the model is expected to be tuned.
func ExampleCity_Append() {
	c := NewCity(1, 3, 1)
	c.AnomalyRate = 0
	now := time.Date(2026, 11, 24, 8, 15, 0, 0, time.UTC)
	var buf []byte
	for range 3 {
		buf = c.Append(buf, now)
	}
	fmt.Print(string(buf))
}
