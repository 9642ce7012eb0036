package stream

import (
	"strconv"
	"time"

	"github.com/pulsehq/pulse/internal/event"
)

// AppendResultID appends the JSON members that identify a result: its key
// (group fields by name) and its window's start.
func AppendResultID(dst []byte, r *Result) []byte {
	dst = append(dst, `"key":{`...)
	for i, g := range r.GroupBy {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = event.AppendJSONString(dst, g)
		dst = append(dst, ':')
		if i < len(r.Key) {
			dst = event.AppendJSONString(dst, r.Key[i])
		} else {
			dst = append(dst, `""`...)
		}
	}
	dst = append(dst, `},"window_start":"`...)
	dst = time.UnixMilli(r.Start).UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// AppendResultJSON appends r as the JSON object the results API, live
// views and result topics share: output, key (group fields by name),
// window bounds, final, then the named aggregates.
func AppendResultJSON(dst []byte, r *Result) []byte {
	dst = append(dst, `{"output":`...)
	dst = event.AppendJSONString(dst, r.Output)
	dst = append(dst, ',')
	dst = AppendResultID(dst, r)
	dst = append(dst, `,"window_end":"`...)
	dst = time.UnixMilli(r.End).UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","final":`...)
	dst = strconv.AppendBool(dst, r.Final)
	if r.Retract {
		return append(dst, `,"retract":true}`...)
	}
	n := len(dst)
	dst = AppendValuesJSON(dst, r)
	if len(dst)-n > 2 {
		dst[n] = ','
		return dst
	}
	return append(dst[:n], '}')
}

// AppendValuesJSON appends a result's aggregates as a JSON object of named
// fields, leaving out aggregates without a value (e.g. the average of a
// metric the window never saw).
func AppendValuesJSON(dst []byte, r *Result) []byte {
	dst = append(dst, '{')
	first := true
	for i, v := range r.Values {
		if v.IsNull() {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, r.Names[i]...)
		dst = append(dst, '"', ':')
		dst = v.AppendJSON(dst)
	}
	return append(dst, '}')
}
