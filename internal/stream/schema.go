package stream

import (
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// TypeAny is the type of a column whose values may be any scalar
// (pipeline.TypeAny).
const TypeAny = pipeline.TypeAny

// The names of the bound columns.
const (
	ColWindowStart = pipeline.ColWindowStart
	ColWindowEnd   = pipeline.ColWindowEnd
	ColTime        = pipeline.ColTime
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

// SchemaOf returns the schema of output o's results: o.Schema().
func SchemaOf(o *pipeline.Output) *Schema {
	s := &Schema{Output: o.Name, Kind: o.Kind, groups: len(o.Groups()), Columns: o.Schema(), bounds: 1}
	if o.Kind == pipeline.KindWindow {
		s.bounds = 2
	}
	for i, c := range s.Columns {
		s.members = append(s.members, append(event.AppendJSONString(nil, c.Name), ':'))
		if i >= s.groups+s.bounds {
			s.names = append(s.names, c.Name)
		}
	}
	return s
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
