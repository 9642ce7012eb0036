package event

import (
	"math"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

var citySeeds = []string{
	`{"sensor_id":"tr-1","zone":"zone-01","kind":"traffic","ts":"2026-03-01T12:00:00Z","speed_kmh":42.5,"vehicle_count":12,"occupancy":33.3}`,
	`{"sensor_id":"air-7","zone":"zone-02","kind":"air","ts":1772366400000,"pm25":12,"pm10":20,"no2":3,"o3":4}`,
	`{"sensor_id":"w","zone":"z","kind":"weather","ts":"1772366400000","temp_c":-3.5,"humidity":80,"wind_ms":4.2,"rain_mm":0}`,
	`{"sensor_id":"w","zone":"z","kind":"weather","ts":"2026-03-01T07:30:00.250-04:30","temp_c":70}`,
	`{"sensor_id":"s","zone":"z","kind":"traffic","ts":1,"vehicle_count":3.5}`,
	`{"sensor_id":"s","zone":"z","kind":"traffic","ts":1-2,"speed_kmh":1}`,
	`{"sensor_id":"s","zone":"z","kind":"traffic","ts":"9223372036854775807","speed_kmh":1}`,
	`{"sensor_id":"s","zone":"z","kind":"air","ts":1,"speed_kmh":1}`,
	`{"sensor_id":"s","zone":"z","kind":"bus","ts":1,"speed_kmh":1}`,
	`{"sensor_id":"","zone":"z","kind":"traffic","ts":1,"speed_kmh":NaN}`,
	`{"zone":"z","kind":"traffic","ts":1e16}`,
	`[1,2,3]`,
	`{"sensor_id":"s\u0000","zone":"z\ud800","kind":"traffic","ts":0,"occupancy":-0}`,
	`{`,
	``,
	"{\"sensor_id\":\"s\xff\",\"zone\":\"z\",\"kind\":\"traffic\",\"ts\":1,\"speed_kmh\":1}",
}

// FuzzCityParse checks that Parse never panics and that every reading it
// accepts satisfies the invariants the engine relies on.
func FuzzCityParse(f *testing.F) {
	for _, s := range citySeeds {
		f.Add([]byte(s))
	}
	var p, vp CityParser
	var fj fastjson.Parser
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Reading
		err := p.Parse(data, &r)
		// Parse skips the per-field UTF-8 check on checked input: it must
		// agree with Validate, which does not skip it.
		if CheckUTF8(data) == nil {
			if v, perr := fj.ParseBytes(data); perr == nil {
				var vr Reading
				verr := vp.Validate(v, &vr)
				if (verr == nil) != (err == nil) || (err == nil && vr != r) || (err != nil && verr.Error() != err.Error()) {
					t.Fatalf("Parse = %+v, %v; Validate = %+v, %v", r, err, vr, verr)
				}
			}
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("empty error message for %q", data)
			}
			if !utf8.ValidString(err.Error()) && utf8.Valid(data) {
				t.Fatalf("error message %q is not UTF-8", err)
			}
			return
		}
		checkInvariants(t, &r)
		// Parsing is deterministic and does not depend on earlier input.
		var again Reading
		if err := p.Parse(data, &again); err != nil || again != r {
			t.Fatalf("second Parse = %+v, %v; first %+v", again, err, r)
		}
	})
}

func checkInvariants(t *testing.T, r *Reading) {
	t.Helper()
	if r.SensorID == "" || r.Zone == "" {
		t.Fatalf("accepted empty id: %+v", r)
	}
	if !utf8.ValidString(r.SensorID) || !utf8.ValidString(r.Zone) {
		t.Fatalf("accepted text that is not UTF-8: %+v", r)
	}
	if len(r.SensorID) > 256 || len(r.Zone) > 256 {
		t.Fatalf("accepted id over 256 bytes: %d, %d", len(r.SensorID), len(r.Zone))
	}
	if r.Kind < KindTraffic || r.Kind > KindWeather {
		t.Fatalf("accepted kind %d", r.Kind)
	}
	// RFC 3339 spans years 0000 to 9999; epoch ms numbers [0, 1e15].
	if r.TS < -62167219200000 || r.TS > 1e15 {
		t.Fatalf("accepted ts %d", r.TS)
	}
	if r.Has == 0 || r.Has >= 1<<NumMetrics {
		t.Fatalf("accepted Has = %b", r.Has)
	}
	for m := Metric(0); m < NumMetrics; m++ {
		v := r.Values[m]
		if !r.HasMetric(m) {
			if v != 0 {
				t.Fatalf("absent metric %s has value %v", m, v)
			}
			continue
		}
		lo, hi := m.Range()
		if m.Kind() != r.Kind || math.IsNaN(v) || v < lo || v > hi {
			t.Fatalf("accepted %s = %v on a %s sensor", m, v, r.Kind)
		}
		if m == VehicleCount && v != math.Trunc(v) {
			t.Fatalf("accepted vehicle_count = %v", v)
		}
	}
}

func BenchmarkCityParse(b *testing.B) {
	inputs := make([][]byte, 0, 300)
	for i := range 100 {
		id := strconv.Itoa(i)
		ts := strconv.FormatInt(noon+int64(i)*1000, 10)
		inputs = append(inputs,
			[]byte(`{"sensor_id":"tr-`+id+`","zone":"zone-01","kind":"traffic","ts":"2026-03-01T12:00:`+twoDigits(i%60)+`.123Z","speed_kmh":42.5,"vehicle_count":12,"occupancy":33.3}`),
			[]byte(`{"sensor_id":"air-`+id+`","zone":"zone-02","kind":"air","ts":`+ts+`,"pm25":12.1,"pm10":20.4,"no2":31,"o3":44}`),
			[]byte(`{"sensor_id":"w-`+id+`","zone":"zone-03","kind":"weather","ts":`+ts+`,"temp_c":-3.5,"humidity":80,"wind_ms":4.2,"rain_mm":0}`))
	}
	var bytes int64
	for _, in := range inputs {
		bytes += int64(len(in))
	}
	var p CityParser
	var r Reading
	b.SetBytes(bytes / int64(len(inputs)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := p.Parse(inputs[n%len(inputs)], &r); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func twoDigits(n int) string {
	return string([]byte{byte('0' + n/10), byte('0' + n%10)})
}
