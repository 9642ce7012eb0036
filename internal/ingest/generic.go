package ingest

import (
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/pipeline"
)

// genericParser validates events of streams other than city: a JSON
// object with the source's key field (a string or number) and a readable
// event-time field.
type genericParser struct{ p fastjson.Parser }

func (g *genericParser) validate(data []byte, src *pipeline.Source) (key []byte, err error) {
	v, err := g.p.ParseBytes(data)
	if err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	obj, err := v.Object()
	if err != nil {
		return nil, fmt.Errorf("an event must be a JSON object, got %s", v.Type())
	}
	kv := obj.Get(src.KeyField)
	switch {
	case kv == nil:
		return nil, fmt.Errorf("missing key field %s", src.KeyField)
	case kv.Type() == fastjson.TypeString:
		if len(kv.GetStringBytes()) == 0 {
			return nil, fmt.Errorf("key field %s is empty", src.KeyField)
		}
		key = append(key, kv.GetStringBytes()...)
	case kv.Type() == fastjson.TypeNumber:
		key = append(key, kv.String()...)
	default:
		return nil, fmt.Errorf("key field %s must be a string or number, got %s", src.KeyField, kv.Type())
	}
	tv := obj.Get(src.TimeField)
	if tv == nil {
		return nil, fmt.Errorf("missing event-time field %s", src.TimeField)
	}
	if err := checkTime(tv, src.TimeFormat); err != nil {
		return nil, fmt.Errorf("field %s: %w", src.TimeField, err)
	}
	return key, nil
}

func checkTime(v *fastjson.Value, format string) error {
	switch v.Type() {
	case fastjson.TypeNumber:
		if format == "rfc3339" {
			return fmt.Errorf("%s is a number; the pipeline expects an RFC 3339 time", v)
		}
		if _, err := v.Float64(); err != nil {
			return fmt.Errorf("not a valid number")
		}
		return nil
	case fastjson.TypeString:
		s := string(v.GetStringBytes())
		if format != "epoch_ms" && format != "epoch_s" {
			if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return nil
			}
		}
		if format != "rfc3339" {
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				return nil
			}
		}
		return fmt.Errorf("%q is not a time in format %s", s, format)
	}
	return fmt.Errorf("must be a time string or number, got %s", v.Type())
}
