package pipeline

import (
	"slices"

	"github.com/pulsehq/pulse/internal/aggregate"
)

// The time columns of results.
const (
	// ColWindowStart and ColWindowEnd bound a window output's result.
	ColWindowStart = "window_start"
	ColWindowEnd   = "window_end"
	// ColTime is the event time of a per-event output's result (events,
	// detect, join).
	ColTime = "time"
)

// Schema returns the columns of o's results, in order: the group fields
// (strings; Groups, with a detect output's field and an events output's
// event_id), the time columns (window_start and window_end for a window
// output, time for the others), then the values: a window output's
// aggregates and computed fields, or another output's Columns.
func (o *Output) Schema() []Column {
	groups := o.Groups()
	cols := make([]Column, 0, len(groups)+2+len(o.Aggregates)+len(o.Computed)+len(o.Columns))
	for _, g := range groups {
		cols = append(cols, Column{Name: g, Type: TypeString})
	}
	if o.Kind != KindWindow {
		cols = append(cols, Column{Name: ColTime, Type: TypeTimestamp})
		return append(cols, o.Columns...)
	}
	cols = append(cols, Column{Name: ColWindowStart, Type: TypeTimestamp}, Column{Name: ColWindowEnd, Type: TypeTimestamp})
	for _, a := range o.Aggregates {
		cols = append(cols, Column{Name: a.Name, Type: AggregateType(a.Func)})
	}
	for _, c := range o.Computed {
		cols = append(cols, Column{Name: c.Name, Type: c.Type})
	}
	return cols
}

// TypeAny is the type of a column whose values may be any scalar: a
// string, a number or a boolean, as first() and last() of a field return
// whatever the events held. It is the zero ColumnType, so a computed
// field whose type was left unset is one too.
const TypeAny ColumnType = 0

// ColField is the column of a detect output's rows that names the field
// the row is about: with the group fields and the time, it identifies the
// row (two fields of one key may stand out at the same point).
const ColField = "field"

// ColEventID is the column of an events output's rows that names the
// event the row was made of: with the group fields and the time, it
// identifies the row, so that two events of one key at the same
// millisecond are two rows. It is a pure function of the input, so that
// the row a replayed event makes is the row it made before: for a topic
// source, the source record's position, "topic/partition/offset"; for
// another pipeline's output, the identity of the upstream row
// (Events.Upstream), so that an update or delete of that row reaches the
// row it made.
const ColEventID = "event_id"

// Groups returns the columns that, with the time, identify a result row:
// the group fields, for a detect output the field as well, and for an
// events output the event_id.
func (o *Output) Groups() []string {
	switch o.Kind {
	case KindDetect:
		return append(slices.Clone(o.GroupBy), ColField)
	case KindEvents:
		return append(slices.Clone(o.GroupBy), ColEventID)
	}
	return o.GroupBy
}

// AggregateType is the column type of an aggregate's result: counts are
// whole numbers, first and last whatever the field held, every other
// function a float (JSON numbers are doubles).
func AggregateType(f aggregate.Func) ColumnType {
	switch f.Name() {
	case "count", "count_distinct":
		return TypeInt64
	case "first", "last":
		return TypeAny
	}
	return TypeFloat64
}

// String names a column type as in pipeline files and docs.
func (t ColumnType) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeInt64:
		return "int64"
	case TypeFloat64:
		return "float64"
	case TypeBool:
		return "bool"
	case TypeTimestamp:
		return "timestamp"
	case TypeDecimal:
		return "decimal"
	}
	return "any"
}

// Numeric reports whether values of t are numbers.
func (t ColumnType) Numeric() bool { return t == TypeInt64 || t == TypeFloat64 || t == TypeDecimal }
