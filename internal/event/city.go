package event

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// Kind is the kind of a city sensor.
type Kind uint8

// The sensor kinds.
const (
	KindTraffic Kind = iota + 1
	KindAir
	KindWeather
)

func (k Kind) String() string {
	switch k {
	case KindTraffic:
		return "traffic"
	case KindAir:
		return "air"
	case KindWeather:
		return "weather"
	}
	return "unknown"
}

// ParseKind returns the Kind named s.
func ParseKind(s string) (Kind, bool) {
	switch s {
	case "traffic":
		return KindTraffic, true
	case "air":
		return KindAir, true
	case "weather":
		return KindWeather, true
	}
	return 0, false
}

// Metric identifies one measured quantity of a city reading.
type Metric uint8

// The metrics, in a fixed order used for arrays indexed by Metric.
const (
	SpeedKmh Metric = iota
	VehicleCount
	Occupancy
	PM25
	PM10
	NO2
	O3
	TempC
	Humidity
	WindMs
	RainMm
	NumMetrics
)

type metricSpec struct {
	name     string
	kind     Kind
	min, max float64
	integer  bool
}

var metricSpecs = [NumMetrics]metricSpec{
	SpeedKmh:     {"speed_kmh", KindTraffic, 0, 300, false},
	VehicleCount: {"vehicle_count", KindTraffic, 0, 100000, true},
	Occupancy:    {"occupancy", KindTraffic, 0, 100, false},
	PM25:         {"pm25", KindAir, 0, 2000, false},
	PM10:         {"pm10", KindAir, 0, 5000, false},
	NO2:          {"no2", KindAir, 0, 5000, false},
	O3:           {"o3", KindAir, 0, 2000, false},
	TempC:        {"temp_c", KindWeather, -90, 70, false},
	Humidity:     {"humidity", KindWeather, 0, 100, false},
	WindMs:       {"wind_ms", KindWeather, 0, 120, false},
	RainMm:       {"rain_mm", KindWeather, 0, 500, false},
}

func (m Metric) String() string { return metricSpecs[m].name }

// Kind returns the sensor kind that reports m.
func (m Metric) Kind() Kind { return metricSpecs[m].kind }

// Range returns the inclusive range of valid values of m.
func (m Metric) Range() (lo, hi float64) { return metricSpecs[m].min, metricSpecs[m].max }

// MetricByName returns the metric with the given JSON field name. It is
// a switch on the length and then the name rather than a map: no hash of
// the name, and most keys that are not metrics fail on the length or the
// first bytes. TestMetricByNameMatchesSpecs keeps it in step with
// metricSpecs.
func MetricByName(name string) (Metric, bool) {
	switch len(name) {
	case 2:
		if name == "o3" {
			return O3, true
		}
	case 3:
		if name == "no2" {
			return NO2, true
		}
	case 4:
		switch name {
		case "pm25":
			return PM25, true
		case "pm10":
			return PM10, true
		}
	case 6:
		if name == "temp_c" {
			return TempC, true
		}
	case 7:
		switch name {
		case "wind_ms":
			return WindMs, true
		case "rain_mm":
			return RainMm, true
		}
	case 8:
		if name == "humidity" {
			return Humidity, true
		}
	case 9:
		switch name {
		case "speed_kmh":
			return SpeedKmh, true
		case "occupancy":
			return Occupancy, true
		}
	case 13:
		if name == "vehicle_count" {
			return VehicleCount, true
		}
	}
	return 0, false
}

// Reading is one decoded and validated city sensor reading.
type Reading struct {
	SensorID string
	Zone     string
	Kind     Kind
	// TS is the event time in milliseconds since the Unix epoch.
	TS int64
	// Has has bit m set when metric m is present.
	Has    uint16
	Values [NumMetrics]float64
}

// HasMetric reports whether m is present in r.
func (r *Reading) HasMetric(m Metric) bool { return r.Has&(1<<m) != 0 }

// Set stores value v for metric m.
func (r *Reading) Set(m Metric, v float64) {
	r.Values[m] = v
	r.Has |= 1 << m
}

// Limits bounds the event times a parser accepts.
type Limits struct {
	// MaxFuture is how far ahead of Now an event time may be.
	MaxFuture time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// CityParser decodes city readings. It reuses its buffers, so one parser
// must not be used by two goroutines at once.
type CityParser struct {
	p      fastjson.Parser
	Limits Limits
	// strs holds recent sensor_id and zone strings, so that a reading
	// whose id was seen lately costs no allocation (see internStrings).
	strs *internStrings
}

// ValidationError is a reading that is well-formed JSON but not a valid
// city reading.
type ValidationError struct{ Reason string }

func (e *ValidationError) Error() string { return e.Reason }

func invalid(format string, args ...any) error {
	return &ValidationError{Reason: fmt.Sprintf(format, args...)}
}

// SyntaxError is input that is not a JSON object.
type SyntaxError struct{ Err error }

func (e *SyntaxError) Error() string { return "malformed JSON: " + e.Err.Error() }
func (e *SyntaxError) Unwrap() error { return e.Err }

// Parse decodes and validates one JSON object. A *SyntaxError means the
// bytes are not JSON; a *ValidationError says which field is wrong.
func (cp *CityParser) Parse(data []byte, r *Reading) error {
	if err := CheckUTF8(data); err != nil {
		return err
	}
	v, err := cp.p.ParseBytes(data)
	if err != nil {
		return &SyntaxError{Err: err}
	}
	// data is valid UTF-8, so every string fastjson returns from it is:
	// an unescaped string is a part of data between two quotes, and
	// fastjson's unescaping writes only valid UTF-8 (a lone surrogate
	// escape is kept as its six ASCII bytes, a bad pair becomes U+FFFD).
	// FuzzCityParse checks that Parse agrees with Validate, which checks.
	return cp.fromValue(v, r, false)
}

// Validate checks an already parsed JSON value as a city reading, for
// callers that parsed the record themselves (and checked it with
// CheckUTF8: Validate checks only the text fields it reads).
func (cp *CityParser) Validate(v *fastjson.Value, r *Reading) error {
	return cp.fromValue(v, r, true)
}

// fromValue checks v as a city reading into r. checkText says whether the
// text fields must be checked for UTF-8: false only when the whole input
// was checked already.
func (cp *CityParser) fromValue(v *fastjson.Value, r *Reading, checkText bool) error {
	obj, err := v.Object()
	if err != nil {
		return invalid("a reading must be a JSON object, got %s", v.Type())
	}
	*r = Reading{}
	if cp.strs == nil {
		cp.strs = new(internStrings)
	}
	var sensorID, zone []byte
	var tsVal *fastjson.Value
	var kindName []byte
	var fieldErr error
	var pending [NumMetrics]*fastjson.Value
	obj.Visit(func(key []byte, val *fastjson.Value) {
		if fieldErr != nil {
			return
		}
		switch string(key) {
		case "sensor_id":
			sensorID, fieldErr = stringBytes("sensor_id", val, checkText)
		case "zone":
			zone, fieldErr = stringBytes("zone", val, checkText)
		case "kind":
			kindName, fieldErr = stringBytes("kind", val, checkText)
		case "ts":
			tsVal = val
		default:
			if m, ok := MetricByName(string(key)); ok {
				pending[m] = val
			}
			// Other fields are kept in the stored event but not interpreted.
		}
	})
	if fieldErr != nil {
		return fieldErr
	}
	// A field given twice counts once, with its last value, as before.
	r.SensorID = cp.strs.sensors.get(sensorID)
	r.Zone = cp.strs.zones.get(zone)
	if r.SensorID == "" {
		return invalid("missing field sensor_id: every reading names its sensor")
	}
	if r.Zone == "" {
		return invalid("missing field zone: every reading names its zone")
	}
	if len(kindName) == 0 {
		return invalid("missing field kind: one of traffic, air, weather")
	}
	kind, ok := ParseKind(string(kindName)) // no copy: a switch on the bytes
	if !ok {
		return invalid("kind %q is unknown: use traffic, air or weather", kindName)
	}
	r.Kind = kind
	if tsVal == nil {
		return invalid("missing field ts: an RFC 3339 time or epoch milliseconds")
	}
	if r.TS, err = parseTS(tsVal); err != nil {
		return err
	}
	if cp.Limits.MaxFuture > 0 {
		now := time.Now
		if cp.Limits.Now != nil {
			now = cp.Limits.Now
		}
		if err := CheckFuture(r.TS, cp.Limits.MaxFuture, now); err != nil {
			return invalid("ts %v", err)
		}
	}
	for m := Metric(0); m < NumMetrics; m++ {
		val := pending[m]
		if val == nil {
			continue
		}
		spec := metricSpecs[m]
		if spec.kind != kind {
			return invalid("field %s belongs to kind %s, not to kind %s", spec.name, spec.kind, kind)
		}
		if val.Type() != fastjson.TypeNumber {
			return invalid("field %s must be a number, got %s", spec.name, val.Type())
		}
		f, err := val.Float64()
		if err != nil {
			return invalid("field %s = %s is not a valid number", spec.name, val)
		}
		if math.IsNaN(f) || f < spec.min || f > spec.max {
			return invalid("field %s = %v is outside [%v, %v]", spec.name, f, spec.min, spec.max)
		}
		if spec.integer && f != math.Trunc(f) {
			return invalid("field %s = %v must be a whole number", spec.name, f)
		}
		r.Set(m, f)
	}
	if r.Has == 0 {
		return invalid("no metric of kind %s: send at least one of %s", kind, kindMetricNames(kind))
	}
	return nil
}

func kindMetricNames(k Kind) string {
	s := ""
	for m := Metric(0); m < NumMetrics; m++ {
		if metricSpecs[m].kind == k {
			if s != "" {
				s += ", "
			}
			s += metricSpecs[m].name
		}
	}
	return s
}

// stringBytes returns the bytes of string field name, which point into
// the parser's buffer. checkText says whether to check them for UTF-8.
func stringBytes(name string, v *fastjson.Value, checkText bool) ([]byte, error) {
	b, err := v.StringBytes()
	if err != nil {
		return nil, invalid("field %s must be a string, got %s", name, v.Type())
	}
	if len(b) > 256 {
		return nil, invalid("field %s is %d bytes long, at most 256 are allowed", name, len(b))
	}
	if checkText && !utf8.Valid(b) {
		return nil, invalid("field %s is not valid UTF-8: send text as UTF-8", name)
	}
	return b, nil
}

// internStrings keeps the sensor ids and zones of recent readings.
type internStrings struct {
	sensors internCache[[2048]string]
	zones   internCache[[256]string]
}

// internCache is a direct-mapped cache of strings: a slot per hash of the
// bytes, the newer string replacing the older on a collision. Its strings
// are ordinary immutable Go strings, so a reading keeps them as long as
// it likes; the cache only saves allocating and copying an id seen
// lately. It holds at most one string per slot, of at most 256 bytes.
type internCache[A [2048]string | [256]string] struct{ slots A }

// get returns string(b), from the cache when it holds it.
func (c *internCache[A]) get(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	// FNV-1a: ids are short, and most differ only in their last bytes.
	h := uint32(2166136261)
	for _, x := range b {
		h = (h ^ uint32(x)) * 16777619
	}
	slot := &c.slots[int(h)&(len(c.slots)-1)]
	if *slot == string(b) { // compares without converting
		return *slot
	}
	s := string(b)
	*slot = s
	return s
}

// CheckUTF8 returns a *ValidationError when data, an event's JSON text,
// is not valid UTF-8 (RFC 8259 requires it; a group key made of such
// bytes could be neither shown nor queried). It names the offset of the
// first bad byte.
func CheckUTF8(data []byte) error {
	if utf8.Valid(data) {
		return nil
	}
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return invalid("the event is not valid UTF-8 (byte 0x%02x at offset %d): send JSON text as UTF-8", data[i], i)
		}
		i += n
	}
	return nil
}

func parseTS(v *fastjson.Value) (int64, error) {
	switch v.Type() {
	case fastjson.TypeNumber:
		f, err := v.Float64()
		if err != nil {
			// fastjson's scanner lets through malformed numbers such as 1-2.
			return 0, invalid("field ts = %s is not a valid number", v)
		}
		if f != math.Trunc(f) || f < 0 || f > maxEpochMs {
			return 0, invalid("field ts = %v is not whole epoch milliseconds", f)
		}
		return int64(f), nil
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return ParseTime(string(b))
	}
	return 0, invalid("field ts must be an RFC 3339 string or epoch milliseconds, got %s", v.Type())
}

// maxEpochMs bounds event times given as epoch milliseconds (about the
// year 33658), keeping window arithmetic far from int64 overflow.
const maxEpochMs = 1e15

// ParseTime parses an RFC 3339 time, or a decimal string of epoch
// milliseconds, into epoch milliseconds.
func ParseTime(s string) (int64, error) {
	if ms, ok := parseRFC3339Millis(s); ok {
		return ms, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 && n <= maxEpochMs {
		return n, nil
	}
	return 0, invalid("field ts = %q is not RFC 3339 (2026-01-02T15:04:05Z) nor epoch milliseconds", s)
}
