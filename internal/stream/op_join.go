package stream

import (
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// joinOp is the Operator of a join output: it writes one result per
// event, the event's projected fields followed by the fields of the row
// its key names in a Table.
//
// Which table version an event sees: the table's row at the moment the
// task processes the event (processing time), as in Kafka Streams'
// KStream–GlobalKTable join. A table update the table reader applied
// before the event is processed is seen by it; an event processed before
// the update keeps the old value. The join keeps no state of its own, so
// after a crash or an aborted transaction the events processed again see
// the table as it is then: possibly newer values than the first time.
//
// An event without a row (or whose key field is null) is dropped or
// written with null table fields, as the output's join.missing says, and
// counted in pulse_join_unmatched_events_total either way.
type joinOp struct {
	output  string
	groupBy []string
	table   *Table
	missing pipeline.JoinMissing

	keySlot    int
	groupSlots []int
	fieldSlots []int
	fieldTypes []pipeline.ColumnType
	names      []string // the result columns: event fields, then table fields
	nTable     int

	wm      Watermarks
	fired   int64
	pending []Result
	vals    []event.Value // slab the results' values are cut from
	keys    []string      // slab the results' keys are cut from
	keyBuf  []byte

	// dropped and nulled count the events without a row since the last
	// AppendChanges, which adds them to the metrics.
	dropped, nulled  int
	dropCtr, nullCtr prometheus.Counter
}

var _ Operator = (*joinOp)(nil)

// newJoinOp returns the join operator of plan's first output, reading
// events laid out by dec and rows from table.
func newJoinOp(plan *pipeline.Plan, dec *Decoder, table *Table, m *telemetry.Metrics) *joinOp {
	o := &plan.Outputs[0]
	j := o.Join
	op := &joinOp{
		output: o.Name, groupBy: o.GroupBy, table: table, missing: j.Missing,
		keySlot: dec.Slot(j.Key), groupSlots: dec.groupSlots(o), nTable: len(j.TableFields),
		wm: Watermarks{Disorder: plan.Time.MaxOutOfOrderness.Milliseconds()}, fired: NoWatermark,
	}
	for _, f := range j.Fields {
		op.fieldSlots = append(op.fieldSlots, dec.Slot(f.Name))
		op.fieldTypes = append(op.fieldTypes, f.Type)
		op.names = append(op.names, f.Name)
	}
	for _, f := range j.TableFields {
		op.names = append(op.names, f.Name)
	}
	if m != nil {
		op.dropCtr = m.JoinUnmatched.WithLabelValues(plan.Name, o.Name, "dropped")
		op.nullCtr = m.JoinUnmatched.WithLabelValues(plan.Name, o.Name, "nulled")
	}
	return op
}

func (op *joinOp) Assign(p int32, now int64) { op.wm.Assign(p, now) }

func (op *joinOp) Mark(p int32, maxTS int64, seen, idle bool) {
	op.wm.Assign(p, 0)
	if seen {
		op.wm.Raise(p, maxTS)
	}
	op.wm.SetIdle(p, idle)
	if wm := op.wm.Current(0); wm > op.fired {
		op.fired = wm
	}
}

// Add joins one event; a join never finds an event late.
func (op *joinOp) Add(_ int32, r *Record, _ int64) uint64 {
	row, ok := op.lookup(r.Vals[op.keySlot])
	if !ok {
		if op.missing == pipeline.MissingDrop {
			op.dropped++
			return 0
		}
		op.nulled++
	}
	nf := len(op.fieldSlots)
	vals := op.cutVals(nf + op.nTable)
	for i, s := range op.fieldSlots {
		vals[i] = columnValue(r.Vals[s], op.fieldTypes[i])
	}
	if ok {
		copy(vals[nf:], row)
	}
	var key []string
	if len(op.groupSlots) > 0 {
		key = op.cutKeys(len(op.groupSlots))
		for i, s := range op.groupSlots {
			key[i] = keyText(r.Vals[s])
		}
	}
	op.pending = append(op.pending, Result{
		Output: op.output, GroupBy: op.groupBy, Key: key, Start: r.TS, End: r.TS, Final: true,
		Names: op.names, Values: vals,
	})
	return 0
}

// lookup returns the table row of key value k; a null key has none.
func (op *joinOp) lookup(k event.Value) (TableRow, bool) {
	switch k.Kind {
	case event.String:
		return op.table.Lookup(k.Str)
	case event.Null:
		return nil, false
	}
	op.keyBuf = k.AppendKeyText(op.keyBuf[:0])
	return op.table.LookupBytes(op.keyBuf)
}

// slabSize is how many values (or keys) a slab holds at least: results
// are cut from slabs, one allocation per slabSize values, not per event.
const slabSize = 4096

func (op *joinOp) cutVals(n int) []event.Value {
	if cap(op.vals)-len(op.vals) < n {
		op.vals = make([]event.Value, 0, max(slabSize, n))
	}
	l := len(op.vals)
	op.vals = op.vals[:l+n]
	return op.vals[l : l+n : l+n]
}

func (op *joinOp) cutKeys(n int) []string {
	if cap(op.keys)-len(op.keys) < n {
		op.keys = make([]string, 0, max(slabSize, n))
	}
	l := len(op.keys)
	op.keys = op.keys[:l+n]
	return op.keys[l : l+n : l+n]
}

// keyText returns a group-key field as text, as the window engine writes
// it.
func keyText(v event.Value) string {
	if v.Kind == event.String {
		return v.Str
	}
	return string(v.AppendKeyText(nil))
}

// columnValue converts an event value to a column of type ct: a value
// that does not fit the type (a string in a double column, 1.5 in an int
// column) is null.
func columnValue(v event.Value, ct pipeline.ColumnType) event.Value {
	if v.Kind == event.Null {
		return v
	}
	switch ct {
	case pipeline.TypeString:
		if v.Kind == event.String {
			return v
		}
		return event.StringValue(keyText(v))
	case pipeline.TypeInt64:
		if v.Kind == event.Number && v.Num == math.Trunc(v.Num) {
			return v
		}
	case pipeline.TypeFloat64, pipeline.TypeDecimal:
		if v.Kind == event.Number {
			return v
		}
	case pipeline.TypeBool:
		if v.Kind == event.Bool {
			return v
		}
	case pipeline.TypeTimestamp:
		if v.Kind == event.Number {
			return v
		}
		if v.Kind == event.String {
			if t, err := time.Parse(time.RFC3339Nano, v.Str); err == nil {
				return event.NumberValue(float64(t.UnixMilli()))
			}
		}
	}
	return event.Value{}
}

func (op *joinOp) Advance(_ int64, dst []Result, _ int) []Result {
	dst = append(dst, op.pending...)
	clear(op.pending) // dst holds the results now
	op.pending = op.pending[:0]
	return dst
}

func (op *joinOp) Watermark() int64 { return op.fired }

// WriteChanges writes nothing (a join keeps no state) and adds the
// unmatched events since the last call to the metrics: once per
// transaction, not per event.
func (op *joinOp) WriteChanges(func(Change)) {
	if op.dropCtr != nil && op.dropped > 0 {
		op.dropCtr.Add(float64(op.dropped))
	}
	if op.nullCtr != nil && op.nulled > 0 {
		op.nullCtr.Add(float64(op.nulled))
	}
	op.dropped, op.nulled = 0, 0
}

func (op *joinOp) WriteSnapshot(emit func(Change)) { op.WriteChanges(emit) }

// RestoreChange refuses every record: a join writes none, so its
// changelog holds the state of an output of the same name that was not a
// join.
func (op *joinOp) RestoreChange(key, _ []byte, _ int64) error {
	return fmt.Errorf("output %s is a join, which keeps no state, but its changelog holds a record (key %q): the output was of another kind before; rename the output or delete its changelog topic", op.output, key)
}

func (op *joinOp) Groups() int                    { return 0 }
func (op *joinOp) OpenWindows() int               { return 0 }
func (op *joinOp) Partials(dst []Result) []Result { return dst }
