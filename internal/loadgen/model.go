package loadgen

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// zoneModel holds the fixed character of a zone.
type zoneModel struct {
	load  float64 // traffic intensity, around 1
	heat  float64 // temperature offset (urban heat island), °C
	humid float64 // humidity offset, percentage points
	bg    float64 // background pm25, µg/m³
	wind  float64 // typical wind, m/s
}

func newZoneModel(r *rand.Rand) zoneModel {
	return zoneModel{
		load:  0.7 + 0.5*r.Float64(),
		heat:  -1.5 + 3*r.Float64(),
		humid: -5 + 10*r.Float64(),
		bg:    5 + 10*r.Float64(),
		wind:  2 + 3*r.Float64(),
	}
}

// zoneEnv is the noise-free state of a zone at one second.
type zoneEnv struct {
	cong, rainSlow        float64
	pm25, no2, o3         float64
	temp, rh, wind, rainH float64
}

// updateEnv computes every zone's state at local time secs (seconds since
// the epoch shifted by the zone offset). It is a pure function of the seed
// and secs, so caching it per second keeps the output deterministic.
func (c *City) updateEnv(secs int64) {
	day := floorDiv(secs, 86400)
	h := float64(secs-day*86400) / 3600
	wd := (day + 4) % 7 // 1970-01-01 was a Thursday; 0 is Sunday
	weekend := wd == 0 || wd == 6
	base := congestion(h, weekend)

	doy := time.Unix(secs, 0).UTC().YearDay()
	season := 11 - 9*math.Cos(2*math.Pi*float64(doy-20)/365.25)
	frac := h / 24
	dayOff := (1-frac)*c.dayOffset(day) + frac*c.dayOffset(day+1)
	di := diurnal(h)
	sun := math.Max(0, math.Sin(math.Pi*(h-6)/14))
	slot := floorDiv(secs, 1800)
	for z := range c.zones {
		zm, e := &c.zones[z], &c.env[z]
		e.cong = clamp(base*zm.load, 0, 1)
		e.rainH = c.rain(slot, z)
		wet := e.rainH > 0
		e.wind = zm.wind * (0.75 + 0.5*bump(h, 15, 4))
		amp := 5.0
		e.rainSlow = 1
		washout := 1.0
		if wet {
			e.wind *= 1.4
			amp = 2.5
			e.rainSlow = 0.88
			washout = 0.6
		}
		dil := 0.5 + 0.8/(1+e.wind/6)
		e.no2 = (6 + 55*e.cong) * dil
		e.pm25 = (zm.bg + 22*e.cong) * dil * washout
		e.o3 = (20 + 70*sun) * (1 - 0.3*e.cong)
		e.temp = season + dayOff + amp*di + zm.heat
		e.rh = 60 - 22*di + zm.humid
		if wet {
			e.o3 *= 0.7
			e.temp -= 2.5
			e.rh += 25
		}
	}
}

// dayOffset is the day-to-day weather variation of temperature, °C.
func (c *City) dayOffset(day int64) float64 {
	h := mix(c.seed, uint64(day)^0xda1)
	return 6 * (unit(h) + unit(mix(h, 1)) + unit(mix(h, 2)) - 1.5)
}

// rain returns the rain intensity in zone z during half-hour slot, mm/h.
// Rain comes in city-wide wet spells of two hours that cover most zones.
func (c *City) rain(slot int64, z int) float64 {
	spell := mix(c.seed, uint64(floorDiv(slot, 4))^0x7a1)
	if unit(spell) >= 0.12 {
		return 0
	}
	local := mix(spell, uint64(slot)<<16|uint64(z))
	if unit(local) < 0.25 {
		return 0
	}
	intensity := 0.3 - 3*math.Log(1-unit(mix(spell, uint64(slot))))
	return math.Min(intensity*(0.5+unit(mix(local, 3))), 60)
}

// congestion is the city-wide traffic load at local hour h, 0..1.
func congestion(h float64, weekend bool) float64 {
	if weekend {
		return 0.06 + 0.35*bump(h, 13, 3.5) + 0.1*bump(h, 19, 2)
	}
	return 0.06 + 0.8*bump(h, 8.25, 1.1) + 0.85*bump(h, 17.5, 1.4) + 0.3*bump(h, 12.5, 2.5)
}

// diurnal is -1 at 05:00, +1 at 15:00, a smooth cycle in between.
func diurnal(h float64) float64 {
	if h >= 5 && h < 15 {
		return -math.Cos(math.Pi * (h - 5) / 10)
	}
	d := h - 15
	if d < 0 {
		d += 24
	}
	return math.Cos(math.Pi * d / 14)
}

// bump is a Gaussian bump around hour mu, wrapping around midnight.
func bump(h, mu, sigma float64) float64 {
	d := math.Mod(h-mu+36, 24) - 12
	return math.Exp(-0.5 * (d / sigma) * (d / sigma))
}

func (c *City) appendTraffic(dst []byte, s *sensor, e *zoneEnv, anomaly bool) []byte {
	cong := clamp(e.cong*s.load+0.04*c.rng.NormFloat64(), 0, 1)
	speed := s.free*(1-0.72*cong*math.Sqrt(cong))*e.rainSlow + 2.5*c.rng.NormFloat64()
	count := s.cap*(0.03+0.97*cong) + math.Sqrt(s.cap)*0.5*c.rng.NormFloat64()
	occ := 3 + 92*cong + 2*c.rng.NormFloat64()
	if anomaly {
		speed = 4 * c.rng.Float64()
		occ = 96 + 4*c.rng.Float64()
		count *= 0.3
	}
	dst = appendField(dst, `,"speed_kmh":`, clamp(speed, 0, 300))
	dst = append(dst, `,"vehicle_count":`...)
	dst = strconv.AppendUint(dst, uint64(clamp(count, 0, 100000)+0.5), 10)
	return appendField(dst, `,"occupancy":`, clamp(occ, 0, 100))
}

func (c *City) appendAir(dst []byte, s *sensor, e *zoneEnv, anomaly bool) []byte {
	pm25 := e.pm25*s.load + 1.5*c.rng.NormFloat64()
	pm10 := pm25*(1.5+0.2*c.rng.Float64()) + 3 + 2*c.rng.NormFloat64()
	no2 := e.no2*s.load + 3*c.rng.NormFloat64()
	o3 := e.o3 + 3*c.rng.NormFloat64()
	if anomaly {
		pm25 = 300 + 600*c.rng.Float64()
		pm10 = pm25 * 1.4
	}
	dst = appendField(dst, `,"pm25":`, clamp(pm25, 0.5, 2000))
	dst = appendField(dst, `,"pm10":`, clamp(pm10, 1, 5000))
	dst = appendField(dst, `,"no2":`, clamp(no2, 0, 5000))
	return appendField(dst, `,"o3":`, clamp(o3, 0, 2000))
}

func (c *City) appendWeather(dst []byte, s *sensor, e *zoneEnv, anomaly bool) []byte {
	temp := e.temp + 0.4*s.bias + 0.2*c.rng.NormFloat64()
	rh := e.rh + 2*c.rng.NormFloat64()
	wind := math.Abs(e.wind * (1 + 0.25*c.rng.NormFloat64()))
	rain := 0.0
	if e.rainH > 0 {
		rain = e.rainH * (0.8 + 0.4*c.rng.Float64())
	}
	if anomaly { // a storm cell
		wind = 32 + 15*c.rng.Float64()
		rain = 60 + 90*c.rng.Float64()
		rh = 100
	}
	dst = appendField(dst, `,"temp_c":`, clamp(temp, -90, 70))
	dst = appendField(dst, `,"humidity":`, clamp(rh, 3, 100))
	dst = appendField(dst, `,"wind_ms":`, clamp(wind, 0, 120))
	return appendField(dst, `,"rain_mm":`, clamp(rain, 0, 500))
}

// mix hashes a and b into well spread bits (splitmix64 finalizer).
func mix(a, b uint64) uint64 {
	x := a ^ (b+0x9e3779b97f4a7c15)*0xbf58476d1ce4e5b9
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unit maps h to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
