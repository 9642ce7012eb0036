package loadgen

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/pulsehq/pulse/internal/event"
)

// DefaultAnomalyRate is the share of readings that carry an injected
// anomaly when nothing else is configured.
const DefaultAnomalyRate = 0.001

// City generates city sensor readings. Sensors report in turn, so each
// reports once every Sensors readings. Its output depends only on the seed
// and on the sequence of clock values passed to Append.
//
// A City is not safe for concurrent use.
type City struct {
	// AnomalyRate is the probability that a reading carries an injected
	// anomaly; 0 or less injects none.
	AnomalyRate float64

	seed      uint64
	rng       *rand.Rand
	sensors   []sensor
	zones     []zoneModel
	env       []zoneEnv
	envUnix   int64
	cursor    int
	anomalies uint64
	tsCache   [4]tsEntry
}

type sensor struct {
	// prefix is the reading up to and including `"ts":`.
	prefix  []byte
	key     []byte // sensor id, the Kafka record key
	zone    int
	kind    event.Kind
	epochMs bool    // this sensor's firmware sends ts as epoch milliseconds
	free    float64 // traffic: free-flow speed, km/h
	cap     float64 // traffic: vehicles counted per report at saturation
	load    float64 // how busy or polluted this sensor's spot is, around 1
	bias    float64 // calibration offset in standard deviations
}

type tsEntry struct {
	sec    int64
	prefix [20]byte // 2006-01-02T15:04:05.
}

// NewCity returns a generator of readings from sensors sensors spread over
// zones zones. Sensor i (from 0) is in zone i mod zones; kinds go by rounds
// of zones sensors (traffic, air, weather, traffic), so half the sensors
// count traffic and every zone has all kinds once sensors >= 3*zones.
func NewCity(seed int64, sensors, zones int) *City {
	sensors = max(sensors, 1)
	zones = max(zones, 1)
	c := &City{
		AnomalyRate: DefaultAnomalyRate,
		seed:        uint64(seed),
		rng:         rand.New(rand.NewPCG(uint64(seed), 0x5eed_c17e_0f_90_15e)),
		sensors:     make([]sensor, sensors),
		zones:       make([]zoneModel, zones),
		env:         make([]zoneEnv, zones),
		envUnix:     math.MinInt64,
	}
	for z := range c.zones {
		c.zones[z] = newZoneModel(c.rng)
	}
	idWidth := max(4, len(strconv.Itoa(sensors)))
	zoneWidth := max(2, len(strconv.Itoa(zones)))
	kinds := [4]event.Kind{event.KindTraffic, event.KindAir, event.KindWeather, event.KindTraffic}
	for i := range c.sensors {
		s := &c.sensors[i]
		s.zone = i % zones
		s.kind = kinds[(i/zones)%4]
		s.epochMs = i%10 == 9
		s.key = appendPadded([]byte("S-"), i+1, idWidth)
		s.load = 0.8 + 0.4*c.rng.Float64()
		s.bias = c.rng.NormFloat64()
		switch r := c.rng.Float64(); {
		case r < 0.7:
			s.free, s.cap = 45+10*c.rng.Float64(), 20+10*c.rng.Float64()
		case r < 0.9:
			s.free, s.cap = 65+10*c.rng.Float64(), 40+15*c.rng.Float64()
		default:
			s.free, s.cap = 100+20*c.rng.Float64(), 70+30*c.rng.Float64()
		}
		p := append([]byte(nil), `{"sensor_id":"`...)
		p = append(p, s.key...)
		p = append(p, `","zone":"zone-`...)
		p = appendPadded(p, s.zone+1, zoneWidth)
		p = append(p, `","kind":"`...)
		p = append(p, s.kind.String()...)
		p = append(p, `","ts":`...)
		s.prefix = p
	}
	return c
}

// Sensors returns the number of sensors.
func (c *City) Sensors() int { return len(c.sensors) }

// Anomalies returns how many readings so far carried an injected anomaly.
func (c *City) Anomalies() uint64 { return c.anomalies }

// Append appends the next reading, one JSON object and a newline, to dst.
// Its event time is now minus a random delay of up to 2 s (mostly far
// less), so readings are slightly out of order but never in the future.
// Rush hours and the diurnal cycles follow the hour of now in now's
// location.
func (c *City) Append(dst []byte, now time.Time) []byte {
	dst, _, _ = c.next(dst, now, true)
	return dst
}

// next appends the next reading and returns the index of its sensor and
// its event time in epoch milliseconds.
func (c *City) next(dst []byte, now time.Time, newline bool) ([]byte, int, int64) {
	idx := c.cursor
	s := &c.sensors[idx]
	if c.cursor++; c.cursor == len(c.sensors) {
		c.cursor = 0
	}
	if u := now.Unix(); u != c.envUnix {
		_, off := now.Zone()
		c.updateEnv(u + int64(off))
		c.envUnix = u
	}
	j := c.rng.Float64()
	ts := now.UnixMilli() - int64(j*j*j*2000)

	dst = append(dst, s.prefix...)
	if s.epochMs {
		dst = strconv.AppendInt(dst, ts, 10)
	} else {
		dst = c.appendTS(dst, ts)
	}
	anomaly := c.AnomalyRate > 0 && c.rng.Float64() < c.AnomalyRate
	if anomaly {
		c.anomalies++
	}
	e := &c.env[s.zone]
	switch s.kind {
	case event.KindTraffic:
		dst = c.appendTraffic(dst, s, e, anomaly)
	case event.KindAir:
		dst = c.appendAir(dst, s, e, anomaly)
	default:
		dst = c.appendWeather(dst, s, e, anomaly)
	}
	dst = append(dst, '}')
	if newline {
		dst = append(dst, '\n')
	}
	return dst, idx, ts
}

// appendTS appends ms as a quoted RFC 3339 UTC time with milliseconds.
func (c *City) appendTS(dst []byte, ms int64) []byte {
	sec, frac := ms/1000, ms%1000
	if frac < 0 {
		sec, frac = sec-1, frac+1000
	}
	ce := &c.tsCache[sec&3]
	if ce.sec != sec || ce.prefix[0] == 0 {
		ce.sec = sec
		time.Unix(sec, 0).UTC().AppendFormat(ce.prefix[:0], "2006-01-02T15:04:05.")
	}
	dst = append(dst, '"')
	dst = append(dst, ce.prefix[:]...)
	dst = append(dst, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10), 'Z', '"')
	return dst
}

// appendField appends key (like `,"pm25":`) and v rounded to one decimal.
// v must be within ±1e15.
func appendField(dst []byte, key string, v float64) []byte {
	dst = append(dst, key...)
	v *= 10
	if v < 0 {
		v = -v
		if v >= 0.5 {
			dst = append(dst, '-')
		}
	}
	n := uint64(v + 0.5)
	dst = strconv.AppendUint(dst, n/10, 10)
	return append(dst, '.', byte('0'+n%10))
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(dst []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
