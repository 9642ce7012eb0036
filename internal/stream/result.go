package stream

import (
	"strconv"

	"github.com/pulsehq/pulse/internal/event"
)

// AppendAggsJSON appends the aggregates of s as a JSON object with named
// fields: "count", then for each metric present "<metric>_count",
// "<metric>_avg", "<metric>_min" and "<metric>_max".
func AppendAggsJSON(dst []byte, s *WindowState) []byte {
	dst = append(dst, `{"count":`...)
	dst = strconv.AppendInt(dst, s.Count, 10)
	for m := event.Metric(0); m < event.NumMetrics; m++ {
		if s.Has&(1<<m) == 0 {
			continue
		}
		a := &s.Metrics[m]
		name := m.String()
		dst = appendField(dst, name, "_count")
		dst = strconv.AppendInt(dst, a.Count, 10)
		dst = appendField(dst, name, "_avg")
		dst = appendFloat(dst, a.Avg())
		dst = appendField(dst, name, "_min")
		dst = appendFloat(dst, a.Min)
		dst = appendField(dst, name, "_max")
		dst = appendFloat(dst, a.Max)
	}
	return append(dst, '}')
}

func appendField(dst []byte, name, suffix string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, suffix...)
	return append(dst, '"', ':')
}

func appendFloat(dst []byte, f float64) []byte {
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}
