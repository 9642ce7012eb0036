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
		s := string(v.GetStringBytes())
		if format == "auto" || format == "rfc3339" || format == "" {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return t.UnixMilli(), nil
			}
			if format == "rfc3339" {
				return 0, fmt.Errorf("%q is not an RFC 3339 time", s)
			}
		}
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
