package event

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/valyala/fastjson"
)

// ReadTime reads an event time, in milliseconds since the Unix epoch, from
// a JSON value in a pipeline source's time format: "auto" (an RFC 3339
// string, or epoch milliseconds as a number or a string of digits),
// "rfc3339", "epoch_ms" or "epoch_s".
func ReadTime(v *fastjson.Value, format string) (int64, error) {
	switch v.Type() {
	case fastjson.TypeNumber:
		f, err := v.Float64()
		if err != nil {
			return 0, fmt.Errorf("%s is not a valid number", v)
		}
		switch format {
		case "epoch_s":
			f *= 1000
		case "rfc3339":
			return 0, fmt.Errorf("%v is a number; the pipeline expects an RFC 3339 time", f)
		}
		if f < -1e15 || f > 1e15 {
			return 0, fmt.Errorf("%v is out of range for epoch milliseconds", f)
		}
		return int64(math.Floor(f)), nil
	case fastjson.TypeString:
		b := v.GetStringBytes()
		if format == "auto" || format == "rfc3339" || format == "" {
			if ms, ok := parseRFC3339Millis(b); ok {
				return ms, nil
			}
			if format == "rfc3339" {
				return 0, fmt.Errorf("%q is not an RFC 3339 time", b)
			}
		}
		s := string(b)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < -1e15 || n > 1e15 {
			if format == "epoch_ms" || format == "epoch_s" {
				return 0, fmt.Errorf("%q is not a time in format %s", s, format)
			}
			return 0, fmt.Errorf("%q is not a time: use RFC 3339 or epoch milliseconds", s)
		}
		if format == "epoch_s" {
			n *= 1000
		}
		return n, nil
	}
	return 0, fmt.Errorf("must be a time string or number, got %s", v.Type())
}

// parseRFC3339Millis parses an RFC 3339 time into epoch milliseconds, as
// time.Parse(time.RFC3339Nano) and UnixMilli would. The layout senders use
// almost always, "2006-01-02T15:04:05.000Z" (UTC, 0 to 9 fraction digits),
// takes a fast path without time.Parse, whose general layout matching
// costs several times more; anything else (offsets, out-of-range fields)
// is left to time.Parse.
func parseRFC3339Millis[T string | []byte](b T) (int64, bool) {
	if ms, ok := fastRFC3339UTC(b); ok {
		return ms, true
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return 0, false
	}
	return t.UnixMilli(), true
}

// fastRFC3339UTC parses exactly YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z with every
// field in range; it reports false for anything else.
func fastRFC3339UTC[T string | []byte](b T) (int64, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return 0, false
	}
	num := func(s T) (int64, bool) {
		var n int64
		for i := range len(s) {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int64(c-'0')
		}
		return n, true
	}
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[5:7])
	d, ok3 := num(b[8:10])
	h, ok4 := num(b[11:13])
	mi, ok5 := num(b[14:16])
	s, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y) || h > 23 || mi > 59 || s > 59 {
		return 0, false
	}
	var ms int64
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return 0, false
		}
		f, ok := num(frac[1:])
		if !ok {
			return 0, false
		}
		for range 10 - len(frac) {
			f *= 10 // to nanoseconds
		}
		ms = f / 1e6
	}
	return ((daysFromCivil(y, mo, d)*24+h)*60+mi)*60_000 + s*1000 + ms, true
}

func daysIn(month, year int64) int64 {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days from 1970-01-01 to the proleptic
// Gregorian date y-m-d (H. Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
