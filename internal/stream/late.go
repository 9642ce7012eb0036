package stream

import (
	"strconv"
	"time"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// appendEventJSON renders an event as the window stage saw it, for the
// late topic: its event time under the source's time field (in the
// source's time format), then every field the pipeline reads (group-by,
// aggregated and derived fields) that the event has. The original record
// stays in the source topic; the late record's pulse-source header names
// it.
func appendEventJSON(dst []byte, src *pipeline.Source, slots []string, r *Record) []byte {
	dst = append(dst, '{')
	dst = event.AppendJSONString(dst, src.TimeField)
	dst = append(dst, ':')
	switch src.TimeFormat {
	case "epoch_ms":
		dst = strconv.AppendInt(dst, r.TS, 10)
	case "epoch_s":
		dst = strconv.AppendFloat(dst, float64(r.TS)/1000, 'f', -1, 64)
	default:
		dst = append(dst, '"')
		dst = time.UnixMilli(r.TS).UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	for i, name := range slots {
		if name == src.TimeField || i >= len(r.Vals) || r.Vals[i].IsNull() {
			continue
		}
		dst = append(dst, ',')
		dst = event.AppendJSONString(dst, name)
		dst = append(dst, ':')
		dst = r.Vals[i].AppendJSON(dst)
	}
	return append(dst, '}')
}
