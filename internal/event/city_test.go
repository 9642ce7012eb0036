package event

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

// ms returns the epoch milliseconds of a UTC wall-clock time.
func ms(y int, mo time.Month, d, h, mi, s, milli int) int64 {
	return time.Date(y, mo, d, h, mi, s, milli*int(time.Millisecond), time.UTC).UnixMilli()
}

// noon is 2026-03-01T12:00:00Z, the event time of most test readings.
var noon = ms(2026, 3, 1, 12, 0, 0, 0)

func reading(id, zone string, k Kind, ts int64, vals map[Metric]float64) Reading {
	r := Reading{SensorID: id, Zone: zone, Kind: k, TS: ts}
	for m, v := range vals {
		r.Set(m, v)
	}
	return r
}

func TestCityParseValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Reading
	}{
		{"traffic, all metrics",
			`{"sensor_id":"tr-1","zone":"zone-01","kind":"traffic","ts":"2026-03-01T12:00:00Z","speed_kmh":42.5,"vehicle_count":12,"occupancy":33.3}`,
			reading("tr-1", "zone-01", KindTraffic, noon, map[Metric]float64{SpeedKmh: 42.5, VehicleCount: 12, Occupancy: 33.3})},
		{"air, one metric",
			`{"sensor_id":"air-7","zone":"zone-02","kind":"air","ts":1772366400000,"pm25":12}`,
			reading("air-7", "zone-02", KindAir, noon, map[Metric]float64{PM25: 12})},
		{"air, every metric",
			`{"sensor_id":"a","zone":"z","kind":"air","ts":1772366400000,"pm25":1,"pm10":2,"no2":3,"o3":4}`,
			reading("a", "z", KindAir, noon, map[Metric]float64{PM25: 1, PM10: 2, NO2: 3, O3: 4})},
		{"weather, every metric",
			`{"sensor_id":"w","zone":"z","kind":"weather","ts":1772366400000,"temp_c":-3.5,"humidity":80,"wind_ms":4.2,"rain_mm":0}`,
			reading("w", "z", KindWeather, noon, map[Metric]float64{TempC: -3.5, Humidity: 80, WindMs: 4.2, RainMm: 0})},
		{"field order does not matter",
			`{"speed_kmh":10,"ts":1772366400000,"kind":"traffic","zone":"z","sensor_id":"s"}`,
			reading("s", "z", KindTraffic, noon, map[Metric]float64{SpeedKmh: 10})},
		{"unknown fields are ignored",
			`{"sensor_id":"s","zone":"z","kind":"traffic","ts":1772366400000,"speed_kmh":10,"firmware":"1.2","lat":52.1,"tags":[1,2]}`,
			reading("s", "z", KindTraffic, noon, map[Metric]float64{SpeedKmh: 10})},
		{"range bounds are inclusive (low)",
			`{"sensor_id":"w","zone":"z","kind":"weather","ts":1772366400000,"temp_c":-90,"humidity":0,"wind_ms":0,"rain_mm":0}`,
			reading("w", "z", KindWeather, noon, map[Metric]float64{TempC: -90, Humidity: 0, WindMs: 0, RainMm: 0})},
		{"range bounds are inclusive (high)",
			`{"sensor_id":"w","zone":"z","kind":"weather","ts":1772366400000,"temp_c":70,"humidity":100,"wind_ms":120,"rain_mm":500}`,
			reading("w", "z", KindWeather, noon, map[Metric]float64{TempC: 70, Humidity: 100, WindMs: 120, RainMm: 500})},
		{"vehicle_count written as 3.0 is whole",
			`{"sensor_id":"s","zone":"z","kind":"traffic","ts":1772366400000,"vehicle_count":3.0,"speed_kmh":300}`,
			reading("s", "z", KindTraffic, noon, map[Metric]float64{VehicleCount: 3, SpeedKmh: 300})},
		{"escaped strings are decoded",
			`{"sensor_id":"s\u00e9-1","zone":"z\/1","kind":"traffic","ts":1772366400000,"occupancy":100}`,
			reading("sé-1", "z/1", KindTraffic, noon, map[Metric]float64{Occupancy: 100})},
		{"sensor_id of 256 bytes",
			`{"sensor_id":"` + strings.Repeat("x", 256) + `","zone":"z","kind":"traffic","ts":1772366400000,"speed_kmh":1}`,
			reading(strings.Repeat("x", 256), "z", KindTraffic, noon, map[Metric]float64{SpeedKmh: 1})},
	}
	var p CityParser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := reading("stale", "stale", KindAir, 1, map[Metric]float64{PM10: 9})
			if err := p.Parse([]byte(tt.in), &r); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r != tt.want {
				t.Errorf("Parse =\n %+v\nwant\n %+v", r, tt.want)
			}
		})
	}
}

const okFields = `"sensor_id":"s","zone":"z","kind":"traffic","ts":1772366400000`

func TestCityParseInvalid(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		syntax bool     // want a *SyntaxError instead of a *ValidationError
		want   []string // substrings of the error message
	}{
		{"empty input", ``, true, []string{"malformed JSON"}},
		{"truncated object", `{"sensor_id":"s"`, true, []string{"malformed JSON"}},
		{"trailing garbage", `{"sensor_id":"s"} x`, true, []string{"malformed JSON"}},
		{"array", `[{"sensor_id":"s"}]`, false, []string{"JSON object", "array"}},
		{"number", `42`, false, []string{"JSON object", "number"}},
		{"missing sensor_id", `{"zone":"z","kind":"traffic","ts":1,"speed_kmh":1}`, false, []string{"missing field sensor_id"}},
		{"empty sensor_id", `{"sensor_id":"","zone":"z","kind":"traffic","ts":1,"speed_kmh":1}`, false, []string{"missing field sensor_id"}},
		{"missing zone", `{"sensor_id":"s","kind":"traffic","ts":1,"speed_kmh":1}`, false, []string{"missing field zone"}},
		{"missing kind", `{"sensor_id":"s","zone":"z","ts":1,"speed_kmh":1}`, false, []string{"missing field kind", "traffic, air, weather"}},
		{"missing ts", `{"sensor_id":"s","zone":"z","kind":"traffic","speed_kmh":1}`, false, []string{"missing field ts"}},
		{"sensor_id is a number", `{"sensor_id":17,"zone":"z","kind":"traffic","ts":1,"speed_kmh":1}`, false, []string{"field sensor_id must be a string, got number"}},
		{"zone is null", `{"sensor_id":"s","zone":null,"kind":"traffic","ts":1,"speed_kmh":1}`, false, []string{"field zone must be a string, got null"}},
		{"kind is an object", `{"sensor_id":"s","zone":"z","kind":{},"ts":1,"speed_kmh":1}`, false, []string{"field kind must be a string, got object"}},
		{"sensor_id too long", `{"sensor_id":"` + strings.Repeat("x", 257) + `","zone":"z","kind":"traffic","ts":1,"speed_kmh":1}`, false, []string{"sensor_id", "257 bytes", "at most 256"}},
		{"unknown kind", `{"sensor_id":"s","zone":"z","kind":"bus","ts":1,"speed_kmh":1}`, false, []string{`kind "bus" is unknown`, "traffic, air or weather"}},
		{"kind is case sensitive", `{"sensor_id":"s","zone":"z","kind":"Traffic","ts":1,"speed_kmh":1}`, false, []string{`kind "Traffic" is unknown`}},
		{"no metric", `{` + okFields + `}`, false, []string{"no metric of kind traffic", "speed_kmh, vehicle_count, occupancy"}},
		{"air metric on traffic sensor", `{` + okFields + `,"speed_kmh":1,"pm25":3}`, false, []string{"field pm25", "air", "traffic"}},
		{"traffic metric on weather sensor", `{"sensor_id":"s","zone":"z","kind":"weather","ts":1,"speed_kmh":3}`, false, []string{"field speed_kmh", "traffic", "weather"}},
		{"metric is a string", `{` + okFields + `,"speed_kmh":"fast"}`, false, []string{"field speed_kmh must be a number, got string"}},
		{"metric is null", `{` + okFields + `,"occupancy":null}`, false, []string{"field occupancy must be a number, got null"}},
		{"metric is a malformed number", `{` + okFields + `,"speed_kmh":1-2}`, false, []string{"field speed_kmh = 1-2 is not a valid number"}},
		{"metric is NaN", `{` + okFields + `,"speed_kmh":NaN}`, false, []string{"field speed_kmh = NaN is outside [0, 300]"}},
		{"metric is Inf", `{` + okFields + `,"speed_kmh":Inf}`, false, []string{"field speed_kmh = +Inf is outside [0, 300]"}},
		{"speed above range", `{` + okFields + `,"speed_kmh":300.01}`, false, []string{"field speed_kmh = 300.01 is outside [0, 300]"}},
		{"negative speed", `{` + okFields + `,"speed_kmh":-1}`, false, []string{"field speed_kmh = -1 is outside [0, 300]"}},
		{"occupancy above 100", `{` + okFields + `,"occupancy":101}`, false, []string{"field occupancy = 101 is outside [0, 100]"}},
		{"vehicle_count above range", `{` + okFields + `,"vehicle_count":100001}`, false, []string{"vehicle_count = 100001 is outside"}},
		{"vehicle_count not whole", `{` + okFields + `,"vehicle_count":3.5}`, false, []string{"field vehicle_count = 3.5 must be a whole number"}},
		{"temp below -90", `{"sensor_id":"s","zone":"z","kind":"weather","ts":1,"temp_c":-90.5}`, false, []string{"field temp_c = -90.5 is outside [-90, 70]"}},
		{"humidity above 100", `{"sensor_id":"s","zone":"z","kind":"weather","ts":1,"humidity":100.5}`, false, []string{"field humidity = 100.5 is outside [0, 100]"}},
		{"pm25 above range", `{"sensor_id":"s","zone":"z","kind":"air","ts":1,"pm25":2001}`, false, []string{"field pm25 = 2001 is outside [0, 2000]"}},
		{"zone not UTF-8", "{\"sensor_id\":\"s\",\"zone\":\"z\xff\",\"kind\":\"traffic\",\"ts\":1,\"speed_kmh\":1}", false, []string{"not valid UTF-8", "0xff at offset 26"}},
		{"ignored field not UTF-8", `{` + okFields + ",\"speed_kmh\":1,\"note\":\"\xc3\x28\"}", false, []string{"not valid UTF-8", "0xc3"}},
		{"duplicate field, last one wins", `{` + okFields + `,"speed_kmh":1,"speed_kmh":"x"}`, false, []string{"field speed_kmh must be a number, got string"}},
	}
	var p CityParser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Reading
			err := p.Parse([]byte(tt.in), &r)
			if err == nil {
				t.Fatalf("Parse accepted %s: %+v", tt.in, r)
			}
			var se *SyntaxError
			var ve *ValidationError
			if tt.syntax && !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *SyntaxError", err, err)
			}
			if !tt.syntax && !errors.As(err, &ve) {
				t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestCityParseTS covers every accepted and rejected form of ts.
func TestCityParseTS(t *testing.T) {
	tests := []struct {
		name string
		ts   string // the JSON value of ts
		want int64
		err  string // substring of the error; empty means valid
	}{
		{"RFC 3339 UTC", `"2026-03-01T12:00:00Z"`, noon, ""},
		{"RFC 3339 milliseconds", `"2026-03-01T12:00:00.123Z"`, noon + 123, ""},
		{"RFC 3339 one fractional digit", `"2026-03-01T12:00:00.5Z"`, noon + 500, ""},
		{"RFC 3339 nanoseconds truncate to ms", `"2026-03-01T12:00:00.123999999Z"`, noon + 123, ""},
		{"RFC 3339 positive offset", `"2026-03-01T14:00:00+02:00"`, noon, ""},
		{"RFC 3339 negative offset with fraction", `"2026-03-01T07:30:00.250-04:30"`, noon + 250, ""},
		{"RFC 3339 offset across midnight", `"2026-03-02T01:00:00+13:00"`, noon, ""},
		{"RFC 3339 epoch", `"1970-01-01T00:00:00Z"`, 0, ""},
		{"epoch ms number", `1772366400000`, noon, ""},
		{"epoch ms number with exponent", `1.772366400001e12`, noon + 1, ""},
		{"epoch ms zero", `0`, 0, ""},
		{"epoch ms numeric string", `"1772366400000"`, noon, ""},
		{"epoch ms numeric string upper bound", `"1000000000000000"`, 1e15, ""},
		{"epoch ms number upper bound", `1e15`, 1e15, ""},
		{"RFC 3339 without offset", `"2026-03-01T12:00:00"`, 0, `ts = "2026-03-01T12:00:00" is not RFC 3339`},
		{"space instead of T", `"2026-03-01 12:00:00Z"`, 0, "is not RFC 3339"},
		{"date only", `"2026-03-01"`, 0, "is not RFC 3339"},
		{"day out of range", `"2026-02-30T12:00:00Z"`, 0, "is not RFC 3339"},
		{"words", `"yesterday"`, 0, `ts = "yesterday" is not RFC 3339 (2026-01-02T15:04:05Z) nor epoch milliseconds`},
		{"empty string", `""`, 0, "is not RFC 3339"},
		{"negative numeric string", `"-5"`, 0, "is not RFC 3339"},
		{"numeric string beyond 1e15", `"9223372036854775807"`, 0, "nor epoch milliseconds"},
		{"numeric string with fraction", `"1772366400000.5"`, 0, "nor epoch milliseconds"},
		{"fractional ms number", `1772366400000.5`, 0, "ts = 1.7723664000005e+12 is not whole epoch milliseconds"},
		{"negative number", `-1`, 0, "ts = -1 is not whole epoch milliseconds"},
		{"number beyond 1e15", `1e16`, 0, "is not whole epoch milliseconds"},
		{"malformed number", `1-2`, 0, "ts = 1-2 is not a valid number"},
		{"NaN", `NaN`, 0, "is not whole epoch milliseconds"},
		{"boolean", `true`, 0, "field ts must be an RFC 3339 string or epoch milliseconds, got true"},
		{"null", `null`, 0, "got null"},
		{"object", `{"s":1}`, 0, "got object"},
	}
	var p CityParser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := `{"sensor_id":"s","zone":"z","kind":"traffic","speed_kmh":1,"ts":` + tt.ts + `}`
			var r Reading
			err := p.Parse([]byte(in), &r)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Parse: %v", err)
			case tt.err == "" && r.TS != tt.want:
				t.Fatalf("TS = %d (%s), want %d (%s)", r.TS, time.UnixMilli(r.TS).UTC(), tt.want, time.UnixMilli(tt.want).UTC())
			case tt.err != "" && err == nil:
				t.Fatalf("Parse accepted ts %s as %d", tt.ts, r.TS)
			case tt.err != "" && !strings.Contains(err.Error(), tt.err):
				t.Fatalf("error %q does not contain %q", err, tt.err)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]int64{
		"2026-03-01T12:00:00Z":      noon,
		"2026-03-01T12:00:00.001Z":  noon + 1,
		"2026-03-01T12:00:00+00:00": noon,
		"1772366400000":             noon,
		"0":                         0,
	} {
		got, err := ParseTime(in)
		if err != nil || got != want {
			t.Errorf("ParseTime(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "now", "-1", "1e3", "12:00", "2026-13-01T00:00:00Z"} {
		if got, err := ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) = %d, want an error", in, got)
		}
	}
}

func TestCityParseFuture(t *testing.T) {
	fixed := time.UnixMilli(noon)
	at := func(d time.Duration) string {
		return `{"sensor_id":"s","zone":"z","kind":"traffic","speed_kmh":1,"ts":"` + fixed.Add(d).UTC().Format(time.RFC3339Nano) + `"}`
	}
	tests := []struct {
		name   string
		limits Limits
		in     string
		err    string
	}{
		{"past is fine", Limits{MaxFuture: time.Minute, Now: func() time.Time { return fixed }}, at(-time.Hour), ""},
		{"within the limit", Limits{MaxFuture: time.Minute, Now: func() time.Time { return fixed }}, at(59 * time.Second), ""},
		{"exactly at the limit", Limits{MaxFuture: time.Minute, Now: func() time.Time { return fixed }}, at(time.Minute), ""},
		{"1 ms beyond the limit", Limits{MaxFuture: time.Minute, Now: func() time.Time { return fixed }}, at(time.Minute + time.Millisecond),
			"ts 2026-03-01T12:01:00.001Z is more than 1m0s ahead of the clock: check the sender's clock (the limit is pulse run --max-future)"},
		{"a year ahead", Limits{MaxFuture: time.Hour, Now: func() time.Time { return fixed }}, at(365 * 24 * time.Hour), "ahead of the clock"},
		{"no limit", Limits{}, at(365 * 24 * time.Hour), ""},
		{"nil Now means the wall clock", Limits{MaxFuture: time.Hour}, `{"sensor_id":"s","zone":"z","kind":"traffic","speed_kmh":1,"ts":"9999-01-01T00:00:00Z"}`, "ahead of the clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := CityParser{Limits: tt.limits}
			var r Reading
			err := p.Parse([]byte(tt.in), &r)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want a *ValidationError containing %q", err, tt.err)
			}
		})
	}
}

func TestMetricTable(t *testing.T) {
	for m := Metric(0); m < NumMetrics; m++ {
		got, ok := MetricByName(m.String())
		if !ok || got != m {
			t.Errorf("MetricByName(%q) = %v, %v; want %v", m.String(), got, ok, m)
		}
		if lo, hi := m.Range(); lo >= hi {
			t.Errorf("%s: empty range [%v, %v]", m, lo, hi)
		}
		if k, ok := ParseKind(m.Kind().String()); !ok || k != m.Kind() {
			t.Errorf("%s: kind %v does not round-trip", m, m.Kind())
		}
	}
	if _, ok := MetricByName("ts"); ok {
		t.Error(`MetricByName("ts") found a metric`)
	}
	if Kind(0).String() != "unknown" {
		t.Errorf("Kind(0) = %q", Kind(0))
	}
}

// TestCityValidateUTF8 covers callers that parse the JSON themselves (the
// Kafka path): the text fields Validate reads must be UTF-8 too.
func TestCityValidateUTF8(t *testing.T) {
	var fp fastjson.Parser
	v, err := fp.Parse("{\"sensor_id\":\"s\xfe\",\"zone\":\"z\",\"kind\":\"traffic\",\"ts\":1,\"speed_kmh\":1}")
	if err != nil {
		t.Fatal(err)
	}
	var p CityParser
	var r Reading
	err = p.Validate(v, &r)
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "field sensor_id is not valid UTF-8") {
		t.Fatalf("Validate = %v, want a *ValidationError naming sensor_id", err)
	}
}

func TestMetricByNameMatchesSpecs(t *testing.T) {
	for m := Metric(0); m < NumMetrics; m++ {
		if got, ok := MetricByName(m.String()); !ok || got != m {
			t.Errorf("MetricByName(%q) = %v, %v; want %v", m.String(), got, ok, m)
		}
	}
	for _, name := range []string{"", "o", "o33", "no", "no22", "pm2", "pm255", "pm1", "temp", "temp_", "temp_cc",
		"wind_m", "rain", "rain_mmm", "humidit", "humidityx", "speed", "speed_kmhx", "occupanc", "vehicle_coun",
		"vehicle_countx", "sensor_id", "zone", "kind", "ts", "PM25", "firmware", "xo3", "o3 "} {
		if m, ok := MetricByName(name); ok {
			t.Errorf("MetricByName(%q) = %v, true; want false", name, m)
		}
	}
}

func TestInternCache(t *testing.T) {
	var c internCache[[256]string]
	if got := c.get(nil); got != "" {
		t.Fatalf("get(nil) = %q", got)
	}
	b := []byte("zone-01")
	first := c.get(b)
	b[0] = 'Z' // the cached string must not share the caller's bytes
	if first != "zone-01" || c.get(b) != "Zone-01" || c.get([]byte("zone-01")) != "zone-01" {
		t.Fatalf("cache returned %q for changed bytes", first)
	}
	for i := range 1000 { // collisions replace slots but never return a wrong string
		s := strconv.Itoa(i)
		if got := c.get([]byte(s)); got != s {
			t.Fatalf("get(%q) = %q", s, got)
		}
	}
}
