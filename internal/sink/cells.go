package sink

import (
	"fmt"
	"time"

	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// readCell reads the value a column of type t scanned into (through
// dialect.readExpr): nil is null, a timestamp comes as time.Time or as
// SQLite's text, a decimal and a JSON scalar as text, a boolean as bool
// or SQLite's 0 and 1.
func readCell(t pipeline.ColumnType, v any) (event.Value, error) {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	switch x := v.(type) {
	case nil:
		return event.Value{}, nil
	case time.Time:
		return event.NumberValue(float64(x.UnixMilli())), nil
	case bool:
		return event.BoolValue(x), nil
	case int64:
		if t == pipeline.TypeBool {
			return event.BoolValue(x != 0), nil
		}
		return event.NumberValue(float64(x)), nil
	case float64:
		return event.NumberValue(x), nil
	case string:
		switch t {
		case pipeline.TypeTimestamp:
			ms, err := readTime(x)
			return event.NumberValue(float64(ms)), err
		case stream.TypeAny:
			return readJSONScalar(x)
		}
		return event.StringValue(x), nil
	}
	return event.Value{}, fmt.Errorf("a %s column holds %T", t, v)
}

// readTime reads a timestamp column as ms since the epoch.
func readTime(v any) (int64, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UnixMilli(), nil
	case []byte:
		return readTime(string(x))
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return 0, fmt.Errorf("timestamp %q is not ISO 8601 such as 2026-01-02T15:04:05.000Z", x)
		}
		return t.UnixMilli(), nil
	}
	return 0, fmt.Errorf("a timestamp column holds %T", v)
}

// readJSONScalar reads the JSON text of a column of any type.
func readJSONScalar(s string) (event.Value, error) {
	var p fastjson.Parser
	j, err := p.Parse(s)
	if err != nil {
		return event.Value{}, fmt.Errorf("column of any type holds %q, not JSON", s)
	}
	switch j.Type() {
	case fastjson.TypeString:
		return event.StringValue(string(j.GetStringBytes())), nil
	case fastjson.TypeNumber:
		return event.NumberValue(j.GetFloat64()), nil
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return event.BoolValue(j.Type() == fastjson.TypeTrue), nil
	case fastjson.TypeNull:
		return event.Value{}, nil
	}
	return event.Value{}, fmt.Errorf("column of any type holds %s, want a string, a number or a boolean", j.Type())
}
