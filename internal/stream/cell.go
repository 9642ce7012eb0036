package stream

import (
	"math"
	"strconv"
	"time"

	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// appendCell appends v as a JSON value of a column of type t:
//   - string: a JSON string (a number or boolean as its key text);
//   - int64: a whole number (a fraction is cut off);
//   - float64: a number in its shortest form;
//   - decimal: a number; a string value that holds a decimal number
//     (exact, e.g. read from a record) is written as that number;
//   - bool: true or false;
//   - timestamp: ms since the epoch, written as an RFC 3339 UTC string;
//   - any: the value as it is.
//
// A null, a value of another kind, and NaN or an infinity (JSON has no
// such numbers) are written as null.
func appendCell(dst []byte, t pipeline.ColumnType, v event.Value) []byte {
	switch t {
	case TypeAny:
		return v.AppendJSON(dst)
	case pipeline.TypeString:
		if v.Kind == event.String {
			return event.AppendJSONString(dst, v.Str)
		}
		if v.Kind != event.Null && finite(v) {
			return event.AppendJSONString(dst, string(v.AppendKeyText(nil)))
		}
	case pipeline.TypeInt64:
		if v.Kind == event.Number && finite(v) {
			return event.AppendNumber(dst, math.Trunc(v.Num))
		}
	case pipeline.TypeFloat64:
		if v.Kind == event.Number && finite(v) {
			return event.AppendNumber(dst, v.Num)
		}
	case pipeline.TypeDecimal:
		if v.Kind == event.Number && finite(v) {
			return event.AppendNumber(dst, v.Num)
		}
		if v.Kind == event.String && isJSONNumber(v.Str) {
			return append(dst, v.Str...)
		}
	case pipeline.TypeBool:
		if v.Kind == event.Bool {
			return strconv.AppendBool(dst, v.B)
		}
	case pipeline.TypeTimestamp:
		if v.Kind == event.Number && finite(v) {
			return AppendTimestamp(dst, int64(v.Num))
		}
	}
	return append(dst, "null"...)
}

func finite(v event.Value) bool {
	return v.Kind != event.Number || !(math.IsNaN(v.Num) || math.IsInf(v.Num, 0))
}

// AppendTimestamp appends ms since the Unix epoch as a JSON string in
// RFC 3339, UTC, with as many fraction digits as needed
// ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00.25Z").
func AppendTimestamp(dst []byte, ms int64) []byte {
	dst = append(dst, '"')
	dst = time.UnixMilli(ms).UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// isJSONNumber reports whether s is a number as JSON writes one, and
// nothing else (no spaces around it).
func isJSONNumber(s string) bool {
	return s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && s[len(s)-1] >= '0' && s[len(s)-1] <= '9' &&
		fastjson.Validate(s) == nil
}
