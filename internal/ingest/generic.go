package ingest

import (
	"fmt"
	"time"

	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// genericParser validates events of streams other than city: a JSON
// object, valid UTF-8, with the source's key field (a string or number)
// and a readable event-time field.
type genericParser struct {
	p         fastjson.Parser
	maxFuture time.Duration // 0: no limit
}

func (g *genericParser) validate(data []byte, src *pipeline.Source) (key []byte, err error) {
	if err := event.CheckUTF8(data); err != nil {
		return nil, err
	}
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
	ts, err := event.ReadTime(tv, src.TimeFormat)
	if err != nil {
		return nil, fmt.Errorf("field %s: %w", src.TimeField, err)
	}
	if err := event.CheckFuture(ts, g.maxFuture, time.Now); err != nil {
		return nil, fmt.Errorf("field %s = %w", src.TimeField, err)
	}
	return key, nil
}
