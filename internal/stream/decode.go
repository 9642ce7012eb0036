package stream

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// Record is one decoded event: its event time and the values of the fields
// the pipeline's outputs read, in slot order (see Decoder.Slot).
type Record struct {
	TS   int64
	Vals []event.Value
	// Kind is what the event does to the row it names when the source is
	// another pipeline's output: an insert, an update of a row read
	// before, or its delete (see Output.Changes).
	Kind RecordKind
	// Offset is the event's offset in its source partition, set by the
	// window stage: with the partition, what names an events row
	// (pipeline.ColEventID).
	Offset int64
}

// Decoder turns raw JSON records into Records for one pipeline: it reads
// the event time, applies the where filter and the derived fields, and
// extracts the fields the outputs group by and aggregate. It reuses its
// buffers: one Decoder per goroutine.
type Decoder struct {
	plan    *pipeline.Plan
	p       fastjson.Parser
	slots   []string
	slotOf  map[string]int
	derived []event.Value // by derive index, for the current event
	derIdx  map[string]int
	// derSlots pairs each slot that holds a derived field with its index
	// in derived.
	derSlots [][2]int
	act      activation
	city     *event.CityParser // set for source.schema: city
	// cityOf says, per slot, which field of a validated city reading
	// fills it (cityNone: read from the JSON); visit is set when some
	// slot must be read from the JSON.
	cityOf []int
	visit  bool
	strs   interner // interned string values
	// whereFirst runs the filter before the derived fields when it reads
	// none of them, so a derive that fails on events the filter drops
	// (e.g. a traffic metric on an air reading) never runs for them.
	whereFirst bool
	// identity is set while DecodeDelete runs: no where, no derive.
	identity  bool
	reading   event.Reading
	maxFuture time.Duration // 0: no limit
	clock     time.Time     // SetClock's (zero: read the clock)
}

// NewDecoder returns a decoder for plan.
func NewDecoder(plan *pipeline.Plan) *Decoder {
	d := &Decoder{plan: plan, slotOf: map[string]int{}, derIdx: map[string]int{}}
	for i, dv := range plan.Derive {
		d.derIdx[dv.Name] = i
	}
	d.derived = make([]event.Value, len(plan.Derive))
	if plan.Source.Schema == "city" {
		d.city = &event.CityParser{}
	}
	for _, o := range plan.Outputs {
		for _, g := range o.GroupBy {
			d.Slot(g)
		}
		for _, a := range o.Aggregates {
			if a.Field != "" {
				d.Slot(a.Field)
			}
		}
		for _, f := range o.InputFields() { // events and detect outputs
			d.Slot(f)
		}
	}
	d.act.d = d
	if w := plan.Where; w != nil {
		d.whereFirst = true
		for _, f := range w.Fields {
			if _, ok := d.derIdx[f]; ok {
				d.whereFirst = false
			}
		}
	}
	return d
}

// Fields of a city reading that fill slots without a second pass over the
// JSON; metric m is cityMetric+m.
const (
	cityNone = iota
	citySensor
	cityZone
	cityKind
	cityMetric
)

func cityField(name string) int {
	switch name {
	case "sensor_id":
		return citySensor
	case "zone":
		return cityZone
	case "kind":
		return cityKind
	}
	if m, ok := event.MetricByName(name); ok {
		return cityMetric + int(m)
	}
	return cityNone
}

// fromCity fills the slots that the validated city reading holds.
func (d *Decoder) fromCity(r *Record) {
	rd := &d.reading
	for i, f := range d.cityOf {
		switch f {
		case cityNone:
		case citySensor:
			r.Vals[i] = event.StringValue(rd.SensorID)
		case cityZone:
			r.Vals[i] = event.StringValue(rd.Zone)
		case cityKind:
			r.Vals[i] = event.StringValue(rd.Kind.String())
		default:
			if m := event.Metric(f - cityMetric); rd.HasMetric(m) {
				r.Vals[i] = event.NumberValue(rd.Values[m])
			}
		}
	}
}

// Slot returns the slot index of field, adding it if needed.
func (d *Decoder) Slot(field string) int {
	if i, ok := d.slotOf[field]; ok {
		return i
	}
	i := len(d.slots)
	d.slotOf[field] = i
	d.slots = append(d.slots, field)
	j, derived := d.derIdx[field]
	if derived {
		d.derSlots = append(d.derSlots, [2]int{i, j})
	}
	c := cityNone
	if d.city != nil {
		c = cityField(field)
		d.cityOf = append(d.cityOf, c)
	}
	if !derived && c == cityNone {
		d.visit = true
	}
	return i
}

// groupSlots returns the slots of an output's group-by fields, in order.
func (d *Decoder) groupSlots(o *pipeline.Output) []int {
	var slots []int
	for _, g := range o.GroupBy {
		slots = append(slots, d.Slot(g))
	}
	return slots
}

// Slots returns the number of slots.
func (d *Decoder) Slots() int { return len(d.slots) }

// ErrFiltered is returned for events the where expression drops.
var ErrFiltered = errors.New("filtered out by where")

// SetMaxFuture makes Decode reject events whose time is more than max
// ahead of the clock, as ingest does (0: no limit): events written to the
// source topic with a Kafka client skip ingest's check.
func (d *Decoder) SetMaxFuture(max time.Duration) {
	d.maxFuture = max
	if d.city != nil {
		d.city.Limits.MaxFuture = max
		d.city.Limits.Now = d.now
	}
}

// SetClock makes the check of SetMaxFuture use t as the time until the
// next call, instead of reading the clock for every event: the shuffle
// stage sets it once a batch.
func (d *Decoder) SetClock(t time.Time) { d.clock = t }

func (d *Decoder) now() time.Time {
	if d.clock.IsZero() {
		return time.Now()
	}
	return d.clock
}

// Decode decodes data into r. It returns ErrFiltered for events the where
// expression drops, with r.TS set to the event's time (every event read
// advances the watermark, filtered or not), and a descriptive error for
// records that cannot be processed (they belong in the dead-letter topic),
// among them events whose time is missing, unreadable or further ahead of
// the clock than SetMaxFuture allows.
func (d *Decoder) Decode(data []byte, r *Record) error {
	// Events written to the raw topic with a Kafka client skip ingest's
	// check: text that is not UTF-8 would make keys no one can query.
	if err := event.CheckUTF8(data); err != nil {
		return err
	}
	v, err := d.p.ParseBytes(data)
	if err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if d.city != nil {
		if err := d.city.Validate(v, &d.reading); err != nil {
			return err
		}
	}
	obj, err := v.Object()
	if err != nil {
		return fmt.Errorf("an event must be a JSON object, got %s", v.Type())
	}
	d.act.obj = obj
	src := &d.plan.Source
	if d.city != nil && src.TimeField == "ts" {
		r.TS = d.reading.TS // validated and parsed already
	} else {
		tv := obj.Get(src.TimeField)
		if tv == nil {
			return fmt.Errorf("missing event-time field %s", src.TimeField)
		}
		if r.TS, err = event.ReadTime(tv, src.TimeFormat); err != nil {
			return fmt.Errorf("field %s: %w", src.TimeField, err)
		}
		if err := event.CheckFuture(r.TS, d.maxFuture, d.now); err != nil {
			return fmt.Errorf("field %s: %w", src.TimeField, err)
		}
	}
	for i := range d.derived {
		d.derived[i] = event.Value{}
	}
	d.act.ndone = 0
	if d.identity {
		return d.fill(obj, r)
	}
	if d.whereFirst {
		if err := d.where(); err != nil {
			return err
		}
	}
	for i, dv := range d.plan.Derive {
		out, _, err := dv.Expr.Prog.Eval(&d.act)
		if err != nil {
			return fmt.Errorf("derive %s: %w", dv.Name, err)
		}
		if d.derived[i], err = fromCEL(out); err != nil {
			return fmt.Errorf("derive %s: %w", dv.Name, err)
		}
		d.act.ndone = i + 1
	}
	if !d.whereFirst {
		if err := d.where(); err != nil {
			return err
		}
	}
	return d.fill(obj, r)
}

// DecodeDelete decodes the key of a delete record of another pipeline's
// output: the identity columns of the row it withdraws (group fields and
// window_start or time). Where and derive do not run (they read value
// columns the key lacks): a delete of a row the filter dropped deletes
// nothing downstream.
func (d *Decoder) DecodeDelete(key []byte, r *Record) error {
	d.identity = true
	defer func() { d.identity = false }()
	return d.Decode(key, r)
}

// fill sets r's slots from the event obj and the derived fields.
func (d *Decoder) fill(obj *fastjson.Object, r *Record) error {
	if cap(r.Vals) < len(d.slots) {
		r.Vals = make([]event.Value, len(d.slots))
	}
	r.Vals = r.Vals[:len(d.slots)]
	clear(r.Vals)
	if d.city != nil {
		d.fromCity(r)
	}
	if d.visit {
		obj.Visit(func(k []byte, v *fastjson.Value) {
			if i, ok := d.slotOf[string(k)]; ok && (d.city == nil || d.cityOf[i] == cityNone) {
				r.Vals[i] = d.fromJSON(v)
			}
		})
	}
	for _, sd := range d.derSlots {
		r.Vals[sd[0]] = d.derived[sd[1]]
	}
	return nil
}

// interner returns equal strings as one string: group keys (sensor ids,
// zones) repeat, and this keeps decoding them free of allocations. Its
// table is bounded. A nil interner copies every string.
type interner struct{ m map[string]string }

func (t *interner) intern(b []byte) string {
	if t == nil {
		return string(b) // no table: a copy
	}
	if s, ok := t.m[string(b)]; ok {
		return s
	}
	if t.m == nil {
		t.m = map[string]string{}
	}
	if len(t.m) >= 1<<16 {
		clear(t.m)
	}
	s := string(b)
	t.m[s] = s
	return s
}

func (d *Decoder) fromJSON(v *fastjson.Value) event.Value {
	if v == nil {
		return event.Value{}
	}
	switch v.Type() {
	case fastjson.TypeNumber:
		f, err := v.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return event.Value{}
		}
		return event.NumberValue(f)
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return event.StringValue(d.strs.intern(b))
	case fastjson.TypeTrue:
		return event.BoolValue(true)
	case fastjson.TypeFalse:
		return event.BoolValue(false)
	}
	// Objects and arrays are not groupable or aggregatable values.
	return event.Value{}
}

func fromCEL(v ref.Val) (event.Value, error) {
	switch x := v.(type) {
	case types.Double:
		return event.NumberValue(float64(x)), nil
	case types.Int:
		return event.NumberValue(float64(x)), nil
	case types.Uint:
		return event.NumberValue(float64(x)), nil
	case types.String:
		return event.StringValue(string(x)), nil
	case types.Bool:
		return event.BoolValue(bool(x)), nil
	case types.Null:
		return event.Value{}, nil
	case types.Timestamp:
		return event.NumberValue(float64(x.Time.UnixMilli())), nil
	case types.Duration:
		return event.NumberValue(x.Duration.Seconds()), nil
	}
	return event.Value{}, fmt.Errorf("produced a %s; a field must be a number, string, boolean or null", v.Type())
}

// activation resolves CEL identifiers to the current event's fields and
// the derived fields computed so far.
type activation struct {
	d     *Decoder
	obj   *fastjson.Object
	ndone int // derived fields available
	// missing holds, per field name, the error an expression reading it
	// gets from an event without it (made once).
	missing map[string]ref.Val
}

func (a *activation) ResolveName(name string) (any, bool) {
	if i, ok := a.d.derIdx[name]; ok && i < a.ndone {
		return toNative(a.d.derived[i]), true
	}
	v := a.obj.Get(name)
	if v == nil {
		// An error value, rather than not found, so that the reason
		// says what the sender can act on (CEL's own is "no such
		// attribute(s)"); has() receives it and is false.
		e, ok := a.missing[name]
		if !ok {
			if a.missing == nil {
				a.missing = map[string]ref.Val{}
			}
			e = types.NewErr("the event has no field %s (an expression can test for it with has(%s))", name, name)
			a.missing[name] = e
		}
		return e, true
	}
	return jsonNative(v), true
}

func (a *activation) Parent() interpreter.Activation { return nil }

func toNative(v event.Value) any {
	switch v.Kind {
	case event.Number:
		return v.Num
	case event.String:
		return v.Str
	case event.Bool:
		return v.B
	}
	return types.NullValue
}

func jsonNative(v *fastjson.Value) any {
	switch v.Type() {
	case fastjson.TypeNumber:
		f, _ := v.Float64()
		return f
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return string(b)
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeFalse:
		return false
	case fastjson.TypeObject:
		o, _ := v.Object()
		m := make(map[string]any, o.Len())
		o.Visit(func(k []byte, x *fastjson.Value) { m[string(k)] = jsonNative(x) })
		return m
	case fastjson.TypeArray:
		arr, _ := v.Array()
		out := make([]any, len(arr))
		for i, x := range arr {
			out[i] = jsonNative(x)
		}
		return out
	}
	return types.NullValue
}

// where evaluates the pipeline's filter on the current event.
func (d *Decoder) where() error {
	if w := d.plan.Where; w != nil {
		out, _, err := w.Prog.Eval(&d.act)
		if err != nil {
			return fmt.Errorf("where %q: %w", w.Source, err)
		}
		if b, ok := out.(types.Bool); !ok {
			return fmt.Errorf("where %q returned %s, not a boolean", w.Source, out.Type())
		} else if !b {
			return ErrFiltered
		}
	}
	return nil
}
