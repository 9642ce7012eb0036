package stream

import (
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// TypeAny is the type of a column whose values may be any scalar: a
// string, a number or a boolean, as first() and last() of a field return
// whatever the events held. It is the zero ColumnType, so a computed
// field whose type was left unset is one too.
const TypeAny pipeline.ColumnType = 0

// The names of the bound columns.
const (
	ColWindowStart = "window_start"
	ColWindowEnd   = "window_end"
	ColTime        = "time"
)

// Schema is the typed columns of one output's results, in the order every
// record of the output has them: the group fields (strings), the bounds
// (window_start and window_end for a window output, time for an events or
// detect output; timestamps), then the value columns (a window output's
// aggregates and computed fields; an events or detect output's Columns).
// Result topics, sinks, live views and the results API all read and write
// results through it (see AppendValue, Decoder).
type Schema struct {
	Output  string
	Kind    pipeline.OutputKind
	Columns []pipeline.Column
	groups  int      // the group columns: Columns[:groups]
	bounds  int      // the bound columns that follow: 2 or 1
	names   []string // the value columns' names, for Result.Names
	// members holds each column's JSON member prefix, `"name":`.
	members [][]byte
}

// SchemaOf returns the schema of output o's results.
func SchemaOf(o *pipeline.Output) *Schema {
	s := &Schema{Output: o.Name, Kind: o.Kind, groups: len(o.GroupBy)}
	for _, g := range o.GroupBy {
		s.Columns = append(s.Columns, pipeline.Column{Name: g, Type: pipeline.TypeString})
	}
	if o.Kind == pipeline.KindWindow {
		s.bounds = 2
		s.Columns = append(s.Columns,
			pipeline.Column{Name: ColWindowStart, Type: pipeline.TypeTimestamp},
			pipeline.Column{Name: ColWindowEnd, Type: pipeline.TypeTimestamp})
		for _, a := range o.Aggregates {
			s.Columns = append(s.Columns, pipeline.Column{Name: a.Name, Type: AggregateType(a.Func.Name())})
		}
		for _, c := range o.Computed {
			s.Columns = append(s.Columns, pipeline.Column{Name: c.Name, Type: c.Type})
		}
	} else {
		s.bounds = 1
		s.Columns = append(s.Columns, pipeline.Column{Name: ColTime, Type: pipeline.TypeTimestamp})
		s.Columns = append(s.Columns, o.Columns...)
	}
	for i, c := range s.Columns {
		s.members = append(s.members, append(event.AppendJSONString(nil, c.Name), ':'))
		if i >= s.groups+s.bounds {
			s.names = append(s.names, c.Name)
		}
	}
	return s
}

// AggregateType is the column type of an aggregate function's results:
// counts are whole numbers, first and last whatever the field held,
// every other function a float.
func AggregateType(fn string) pipeline.ColumnType {
	switch fn {
	case "count", "count_distinct":
		return pipeline.TypeInt64
	case "first", "last":
		return TypeAny
	}
	return pipeline.TypeFloat64
}

// Group returns the group columns.
func (s *Schema) Group() []pipeline.Column { return s.Columns[:s.groups] }

// Values returns the value columns, in the order of Result.Values.
func (s *Schema) Values() []pipeline.Column { return s.Columns[s.groups+s.bounds:] }

// ValueNames returns the value columns' names, in the order of
// Result.Values; it is shared: do not modify it.
func (s *Schema) ValueNames() []string { return s.names }

// Windowed reports whether the output's results are windows (bounded by
// window_start and window_end) rather than points in time.
func (s *Schema) Windowed() bool { return s.bounds == 2 }

// TypeName is the name of a column type in docs and errors.
func TypeName(t pipeline.ColumnType) string {
	switch t {
	case pipeline.TypeString:
		return "string"
	case pipeline.TypeInt64:
		return "int64"
	case pipeline.TypeFloat64:
		return "float64"
	case pipeline.TypeBool:
		return "bool"
	case pipeline.TypeTimestamp:
		return "timestamp"
	case pipeline.TypeDecimal:
		return "decimal"
	}
	return "any"
}
