package stream

import (
	"math"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// resultExprs evaluates an output's computed fields and its having over
// the output's results. It is built once per output and only read after:
// tasks flushing concurrently share it.
//
// Computed fields are evaluated in order and appended to a result's values
// after the aggregates; one that fails (a division by zero, an aggregate
// without a value) is null. A result passes having when it evaluates to
// true; an error (e.g. it reads a null aggregate) counts as false.
type resultExprs struct {
	def *pipeline.Output
	// names are the aggregates, then the computed fields: the Names of
	// every result of the output.
	names []string
	naggs int
	cols  map[string]resultCol
}

type colKind uint8

const (
	colGroup colKind = iota // Key[i]
	colStart                // window_start
	colEnd                  // window_end
	colValue                // Values[i]: an aggregate or a computed field
)

// resultCol is where a column's value is and what CEL type it is read as.
type resultCol struct {
	kind colKind
	i    int
	typ  pipeline.ColumnType // of a value; 0 for a first() or last(), of any type
}

// newResultExprs returns the evaluator of o's computed fields and having,
// or nil when it has neither.
func newResultExprs(o *pipeline.Output) *resultExprs {
	if o.Having == nil && len(o.Computed) == 0 {
		return nil
	}
	x := &resultExprs{def: o, naggs: len(o.Aggregates), cols: map[string]resultCol{}}
	for i, g := range o.GroupBy {
		x.cols[g] = resultCol{kind: colGroup, i: i}
	}
	x.cols["window_start"] = resultCol{kind: colStart}
	x.cols["window_end"] = resultCol{kind: colEnd}
	for i, a := range o.Aggregates {
		x.names = append(x.names, a.Name)
		c := resultCol{kind: colValue, i: i, typ: pipeline.TypeFloat64}
		if n := a.Func.Name(); n == "first" || n == "last" {
			c.typ = 0
		}
		x.cols[a.Name] = c
	}
	for i, c := range o.Computed {
		x.names = append(x.names, c.Name)
		x.cols[c.Name] = resultCol{kind: colValue, i: x.naggs + i, typ: c.Type}
	}
	return x
}

// Finals computes the fields of final results and applies having, in
// place. A final that fails having is not written, except when it is an
// update: the window's earlier final may have passed and be held by a
// sink, so it is written as a retraction, which withdraws it (and is a
// no-op where nothing is held). Retractions pass through.
func (x *resultExprs) Finals(rs []Result) []Result {
	if x == nil {
		return rs
	}
	act := &resultActivation{x: x}
	kept := rs[:0]
	for i := range rs {
		r := rs[i]
		switch {
		case r.Deleted():
			r.Names = x.names
		case x.eval(act, &r):
		case r.Kind == KindUpdate:
			r.Kind, r.Final, r.Values = KindDelete, false, nil
		default:
			continue
		}
		kept = append(kept, r)
	}
	clear(rs[len(kept):])
	return kept
}

// Partials computes the fields of partial results and keeps those that
// pass having, in place.
func (x *resultExprs) Partials(rs []Result) []Result {
	if x == nil {
		return rs
	}
	act := &resultActivation{x: x}
	kept := rs[:0]
	for i := range rs {
		if r := rs[i]; x.eval(act, &r) {
			kept = append(kept, r)
		}
	}
	clear(rs[len(kept):])
	return kept
}

// eval appends the computed fields to r and reports whether r passes
// having.
func (x *resultExprs) eval(act *resultActivation, r *Result) bool {
	vals := make([]event.Value, len(x.names))
	copy(vals, r.Values)
	act.r, act.vals = r, vals
	for j, c := range x.def.Computed {
		if out, _, err := c.Expr.Prog.Eval(act); err == nil {
			vals[x.naggs+j] = resultValue(out)
		}
	}
	r.Names, r.Values = x.names, vals
	if x.def.Having == nil {
		return true
	}
	out, _, err := x.def.Having.Prog.Eval(act)
	pass, ok := out.(types.Bool)
	return err == nil && ok && bool(pass)
}

// resultActivation resolves the columns of the result being evaluated.
type resultActivation struct {
	x    *resultExprs
	r    *Result
	vals []event.Value
}

func (a *resultActivation) ResolveName(name string) (any, bool) {
	c, ok := a.x.cols[name]
	if !ok {
		return nil, false
	}
	switch c.kind {
	case colGroup:
		if c.i < len(a.r.Key) {
			return types.String(a.r.Key[c.i]), true
		}
		return types.NullValue, true
	case colStart:
		return types.Timestamp{Time: time.UnixMilli(a.r.Start).UTC()}, true
	case colEnd:
		return types.Timestamp{Time: time.UnixMilli(a.r.End).UTC()}, true
	}
	return columnCEL(a.vals[c.i], c.typ), true
}

func (a *resultActivation) Parent() interpreter.Activation { return nil }

// columnCEL is a result value as the CEL type of its column.
func columnCEL(v event.Value, t pipeline.ColumnType) ref.Val {
	switch v.Kind {
	case event.Number:
		switch t {
		case pipeline.TypeInt64:
			return types.Int(int64(v.Num))
		case pipeline.TypeTimestamp:
			return types.Timestamp{Time: time.UnixMilli(int64(v.Num)).UTC()}
		}
		return types.Double(v.Num)
	case event.String:
		return types.String(v.Str)
	case event.Bool:
		return types.Bool(v.B)
	}
	return types.NullValue
}

// resultValue is a computed field's value: a timestamp as epoch ms, a
// duration as seconds; a NaN or an infinity (a division by zero) is null.
func resultValue(v ref.Val) event.Value {
	switch x := v.(type) {
	case types.Double:
		if f := float64(x); !math.IsNaN(f) && !math.IsInf(f, 0) {
			return event.NumberValue(f)
		}
	case types.Int:
		return event.NumberValue(float64(x))
	case types.Uint:
		return event.NumberValue(float64(x))
	case types.String:
		return event.StringValue(string(x))
	case types.Bool:
		return event.BoolValue(bool(x))
	case types.Timestamp:
		return event.NumberValue(float64(x.Time.UnixMilli()))
	case types.Duration:
		return event.NumberValue(x.Duration.Seconds())
	}
	return event.Value{}
}
