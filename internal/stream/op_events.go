package stream

import (
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// eventsOp is the Operator of an events output: each event that passes
// the output's where becomes one result at once, its derived fields
// computed and its projected fields checked against their declared types.
// It keeps no state: nothing is late for it (an event is written however
// old it is), and its changelog holds nothing but snapshot marks.
type eventsOp struct {
	def    *pipeline.Output
	ev     *pipeline.Events
	groups []int // slots of the group fields
	// groupBy names a row's identity columns besides the time: the
	// group fields, then event_id (pipeline.Output.Groups).
	groupBy []string
	cols    []colRead // per column, where its value comes from
	names   []string
	act     opActivation
	// whereFirst: the where reads none of the output's derived fields,
	// so it runs before them.
	whereFirst bool
	wm         Watermarks
	fired      int64
	out        []Result
	slab       []event.Value // the results' values, handed out in chunks
	keySlab    []string
	keys       interner // group key texts
	keyBuf     []byte
	err        error
	// The event_id of a row (pipeline.ColEventID): for a topic source
	// the record's position, topic/partition/offset, topics naming the
	// partition id's topic index; for another pipeline's output
	// (linked), the upstream row's identity columns at idSlots.
	topics  []string
	linked  bool
	idSlots []int
	ids     arena // the event_id texts: never reused, as results stay with the caller
}

// colRead says where a column's value comes from: a record slot, or the
// output's derived field der (slot -1).
type colRead struct {
	name string
	slot int
	der  int
	typ  pipeline.ColumnType
}

var (
	_ Operator = (*eventsOp)(nil)
	_ rejecter = (*eventsOp)(nil)
)

// newEventsOp returns the operator of the events output of plan (its only
// output); dec lays out the records.
func newEventsOp(plan *pipeline.Plan, dec *Decoder) *eventsOp {
	def := &plan.Outputs[0]
	o := &eventsOp{def: def, ev: def.Events, groups: dec.groupSlots(def), fired: NoWatermark, wm: markerWM(plan),
		groupBy: def.Groups(), topics: plan.Source.Topics, linked: plan.Source.Pipeline != ""}
	if o.ev == nil {
		o.ev = &pipeline.Events{}
	}
	for _, f := range o.ev.Upstream {
		o.idSlots = append(o.idSlots, dec.Slot(f))
	}
	o.act.init(dec, o.ev.Derive)
	for _, c := range def.Columns {
		cr := colRead{name: c.Name, slot: -1, der: -1, typ: c.Type}
		if i, ok := o.act.der[c.Name]; ok {
			cr.der = i
		} else {
			cr.slot = dec.Slot(c.Name)
		}
		o.cols = append(o.cols, cr)
		o.names = append(o.names, c.Name)
	}
	o.whereFirst = true
	if w := o.ev.Where; w != nil {
		for _, f := range w.Fields {
			if _, ok := o.act.der[f]; ok {
				o.whereFirst = false
			}
		}
	}
	return o
}

func (o *eventsOp) Assign(p int32, now int64) { o.wm.Assign(p, now) }

func (o *eventsOp) Mark(p int32, maxTS int64, seen, idle bool) { markWM(&o.wm, p, maxTS, seen, idle) }

func (o *eventsOp) Rejected() error { return o.err }

// Add writes r as a result when it passes the where; it is never late.
func (o *eventsOp) Add(p int32, r *Record, now int64) uint64 {
	o.err = nil
	if r.Kind == KindDelete {
		// Another pipeline's output withdrew the row: so does this one
		// (where and derive read value columns a delete lacks).
		o.withdraw(p, r)
		return 0
	}
	o.act.rec, o.act.ndone = r, 0
	if o.whereFirst && !o.where() {
		o.filtered(p, r)
		return 0
	}
	for i, d := range o.ev.Derive {
		out, _, err := d.Expr.Prog.Eval(&o.act)
		if err == nil {
			o.act.derived[i], err = fromCEL(out)
		}
		if err != nil {
			o.err = fmt.Errorf("output %s: derive %s: %w", o.def.Name, d.Name, err)
			return 0
		}
		o.act.ndone = i + 1
	}
	if !o.whereFirst && !o.where() {
		o.filtered(p, r)
		return 0
	}
	vals := o.take(len(o.cols))
	for i, c := range o.cols {
		var v event.Value
		if c.der >= 0 {
			v = o.act.derived[c.der]
		} else {
			v = r.Vals[c.slot]
		}
		var err error
		if vals[i], err = checkColumn(v, c.typ); err != nil {
			o.err = fmt.Errorf("output %s: field %s: %w", o.def.Name, c.name, err)
			return 0
		}
	}
	o.out = append(o.out, Result{Output: o.def.Name, GroupBy: o.groupBy, Key: o.groupKey(p, r),
		Start: r.TS, End: r.TS, Final: true, Kind: r.Kind, Names: o.names, Values: vals})
	return 0
}

// withdraw writes a delete of the row of r, read from partition p.
func (o *eventsOp) withdraw(p int32, r *Record) {
	o.out = append(o.out, Result{Output: o.def.Name, GroupBy: o.groupBy, Key: o.groupKey(p, r),
		Start: r.TS, End: r.TS, Final: true, Kind: KindDelete, Names: o.names})
}

// filtered handles an event the where dropped: nothing, unless it updates
// a row of another pipeline's output that may have passed before, whose
// row this output then deletes (a delete of a row never written deletes
// nothing).
func (o *eventsOp) filtered(p int32, r *Record) {
	if o.err == nil && r.Kind == KindUpdate {
		o.withdraw(p, r)
	}
}

// where evaluates the output's filter on the current event; a failure is
// the event's rejection.
func (o *eventsOp) where() bool {
	w := o.ev.Where
	if w == nil {
		return true
	}
	out, _, err := w.Prog.Eval(&o.act)
	if err != nil {
		o.err = fmt.Errorf("output %s: where %q: %w", o.def.Name, w.Source, err)
		return false
	}
	b, ok := out.(types.Bool)
	if !ok {
		o.err = fmt.Errorf("output %s: where %q returned %s, not a boolean", o.def.Name, w.Source, out.Type())
		return false
	}
	return bool(b)
}

// take returns n values for one result. The chunks are never reused: the
// results Advance returned stay with the caller until it wrote them.
func (o *eventsOp) take(n int) []event.Value {
	if cap(o.slab)-len(o.slab) < n {
		o.slab = make([]event.Value, 0, max(1024, n))
	}
	o.slab = o.slab[:len(o.slab)+n]
	return o.slab[len(o.slab)-n : len(o.slab) : len(o.slab)]
}

// groupKey returns the identity of r's row besides its time, r read from
// partition p: its group values as text, then its event_id. They are
// copied, as the record's strings may point into a fetched batch.
func (o *eventsOp) groupKey(p int32, r *Record) []string {
	n := len(o.groups) + 1
	if cap(o.keySlab)-len(o.keySlab) < n {
		o.keySlab = make([]string, 0, 256*n)
	}
	first := len(o.keySlab)
	for _, s := range o.groups {
		o.keyBuf = r.Vals[s].AppendKeyText(o.keyBuf[:0])
		o.keySlab = append(o.keySlab, o.keys.intern(o.keyBuf))
	}
	o.keySlab = append(o.keySlab, o.eventID(p, r))
	return o.keySlab[first:len(o.keySlab):len(o.keySlab)]
}

// eventID returns the event_id of r's row (pipeline.ColEventID), r read
// from partition p (a source partition id: topic index << 16 |
// partition). It is unique to the input r came from and the same every
// time that input is read again, as exactly-once needs: for a topic
// source, the source record's topic, partition and offset; for another
// pipeline's output, the upstream row's identity columns, one as it is,
// several as a group key (event.JoinKey), so that an update or delete of
// an upstream row reaches the row its insert made.
func (o *eventsOp) eventID(p int32, r *Record) string {
	b := o.ids.free()
	switch {
	case o.linked && len(o.idSlots) == 1:
		b = r.Vals[o.idSlots[0]].AppendKeyText(b)
	case o.linked:
		b = appendGroupText(b, o.idSlots, r)
	default:
		topic := "?"
		if t := int(p >> 16); t < len(o.topics) {
			topic = o.topics[t]
		}
		b = append(b, topic...)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(p&0xffff), 10)
		b = append(b, '/')
		b = strconv.AppendInt(b, r.Offset, 10)
	}
	b = o.ids.keep(b)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// checkColumn checks a value against its column's type and converts a
// timestamp to epoch ms. Null (a field the event lacks) fits every type.
func checkColumn(v event.Value, t pipeline.ColumnType) (event.Value, error) {
	if v.Kind == event.Null {
		return v, nil
	}
	switch t {
	case pipeline.TypeString:
		if v.Kind == event.String {
			return v, nil
		}
	case pipeline.TypeFloat64:
		if v.Kind == event.Number {
			return v, nil
		}
	case pipeline.TypeInt64:
		if v.Kind == event.Number {
			if v.Num != math.Trunc(v.Num) || math.Abs(v.Num) > 1<<53 {
				return v, fmt.Errorf("%s is not a whole number (declared int64)", event.AppendNumber(nil, v.Num))
			}
			return v, nil
		}
	case pipeline.TypeBool:
		if v.Kind == event.Bool {
			return v, nil
		}
	case pipeline.TypeTimestamp:
		switch v.Kind {
		case event.Number:
			return v, nil
		case event.String:
			ms, err := event.ParseTime(v.Str)
			if err != nil {
				return v, fmt.Errorf("%q is not a timestamp (declared timestamp): %w", v.Str, err)
			}
			return event.NumberValue(float64(ms)), nil
		}
	}
	return v, fmt.Errorf("%s is %s, the output declares it %s", v.AppendJSON(nil), kindName(v.Kind), typeName(t))
}

func kindName(k event.ValueKind) string {
	switch k {
	case event.Number:
		return "a number"
	case event.String:
		return "a string"
	case event.Bool:
		return "a boolean"
	}
	return "null"
}

func typeName(t pipeline.ColumnType) string {
	switch t {
	case pipeline.TypeString:
		return "a string"
	case pipeline.TypeFloat64:
		return "a float64"
	case pipeline.TypeInt64:
		return "an int64"
	case pipeline.TypeBool:
		return "a bool"
	case pipeline.TypeTimestamp:
		return "a timestamp"
	}
	return fmt.Sprintf("type %d", t)
}

// Advance returns the results of the events added since the last call.
func (o *eventsOp) Advance(now int64, dst []Result, _ int) []Result {
	if wm := o.wm.Current(now); wm > o.fired {
		o.fired = wm
	}
	dst = append(dst, o.out...)
	clear(o.out)
	o.out = o.out[:0]
	return dst
}

// Watermark returns the highest watermark the markers reported: an
// events output emits at once, so it has passed everything up to there.
func (o *eventsOp) Watermark() int64 { return o.fired }

func (o *eventsOp) WriteChanges(func(Change)) {}

func (o *eventsOp) WriteSnapshot(emit func(Change)) {
	w := changeWriter{emit: emit}
	w.snapshotStart()
}

// RestoreChange ignores the records: an events output keeps no state.
func (o *eventsOp) RestoreChange(key, value []byte, now int64) error { return nil }

func (o *eventsOp) Groups() int                    { return 0 }
func (o *eventsOp) OpenWindows() int               { return 0 }
func (o *eventsOp) Partials(dst []Result) []Result { return dst }

// opActivation resolves CEL identifiers of an output's expressions to the
// current record's slots and the output's own derived fields computed so
// far. A field the event lacks is not found: the expression fails, as the
// pipeline's where does.
type opActivation struct {
	rec     *Record
	slots   map[string]int
	der     map[string]int
	derived []event.Value
	ndone   int
}

func (a *opActivation) init(dec *Decoder, derive []pipeline.Derived) {
	a.slots, a.der = map[string]int{}, map[string]int{}
	a.derived = make([]event.Value, len(derive))
	for i, d := range derive {
		a.der[d.Name] = i
	}
	for i, name := range dec.slots {
		a.slots[name] = i
	}
}

func (a *opActivation) ResolveName(name string) (any, bool) {
	if i, ok := a.der[name]; ok {
		if i < a.ndone {
			return toNative(a.derived[i]), true
		}
		return nil, false
	}
	s, ok := a.slots[name]
	if !ok || a.rec.Vals[s].Kind == event.Null {
		return nil, false
	}
	return toNative(a.rec.Vals[s]), true
}

func (a *opActivation) Parent() interpreter.Activation { return nil }
