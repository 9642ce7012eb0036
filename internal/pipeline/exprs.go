package pipeline

import (
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"go.yaml.in/yaml/v3"
)

// The columns of a window output's results, as having and computed read
// them: its group fields (the key, as text), window_start and window_end
// (timestamps), its aggregates (doubles; first and last, whose values may
// be text, are dyn) and the computed fields before the one being compiled.
const (
	windowStart = "window_start"
	windowEnd   = "window_end"
)

// resultScope returns the scope of an expression over o's result columns,
// with the computed fields o has so far; later are the computed fields
// below the one being compiled.
func resultScope(o *Output, later []string) scope {
	sc := scope{types: map[string]*cel.Type{}, what: "column", later: later}
	add := func(name string, t *cel.Type) {
		sc.types[name] = t
		sc.columns = append(sc.columns, name)
	}
	for _, g := range o.GroupBy {
		add(g, cel.StringType)
	}
	add(windowStart, cel.TimestampType)
	add(windowEnd, cel.TimestampType)
	for _, a := range o.Aggregates {
		t := cel.DoubleType
		if n := a.Func.Name(); n == "first" || n == "last" {
			t = cel.DynType
		}
		add(a.Name, t)
	}
	for _, c := range o.Computed {
		add(c.Name, columnCELType(c.Type))
	}
	return sc
}

// columnCELType is the CEL type expressions read a column of type t as.
func columnCELType(t ColumnType) *cel.Type {
	switch t {
	case TypeString:
		return cel.StringType
	case TypeInt64:
		return cel.IntType
	case TypeBool:
		return cel.BoolType
	case TypeTimestamp:
		return cel.TimestampType
	}
	return cel.DoubleType
}

// columnType is the column type a computed field of CEL type t is
// written as; ok is false for types no column holds.
func columnType(t *types.Type) (ColumnType, bool) {
	switch t.Kind() {
	case types.BoolKind:
		return TypeBool, true
	case types.IntKind, types.UintKind:
		return TypeInt64, true
	case types.DoubleKind, types.DurationKind: // a duration is written as seconds
		return TypeFloat64, true
	case types.StringKind:
		return TypeString, true
	case types.TimestampKind:
		return TypeTimestamp, true
	}
	return 0, false
}

// computed compiles an output's ordered computed fields; o holds its group
// fields and aggregates.
func (p *parser) computed(n *yaml.Node, path string, o *Output) {
	es, ok := p.entries(n, path, "e.g. computed: {error_ratio: 'errors / total'}")
	if !ok {
		return
	}
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.key.Value
	}
	for i, e := range es {
		name, fp := e.key.Value, join(path, e.key.Value)
		okName := true
		switch {
		case contains(reserved, name):
			p.errorf(e.key, fp, "rename it, e.g. "+name+"_value", "%s is a reserved result field name", name)
			okName = false
		case contains(o.GroupBy, name):
			p.errorf(e.key, fp, "rename it, e.g. "+name+"_value", "%s is already a group_by field of the output", name)
			okName = false
		case indexOf(aggNames(o), name) >= 0:
			p.errorf(e.key, fp, "rename it, e.g. "+name+"_value", "%s is already an aggregate of the output", name)
			okName = false
		default:
			_, okName = p.name(e.key, fp, "computed field")
		}
		prog, t := p.compileIn(e.val, fp, resultScope(o, names[i+1:]))
		if !okName || prog == nil {
			continue
		}
		ct, okType := columnType(t)
		if !okType {
			p.errorf(e.val, fp, "convert the result, e.g. double(first_price) or string(last_status)",
				"a computed field must be a number, a string, a boolean, a timestamp or a duration, this one is %s", typeName(t))
			continue
		}
		o.Computed = append(o.Computed, Computed{Name: name, Expr: prog, Type: ct})
	}
}

func aggNames(o *Output) []string {
	names := make([]string, len(o.Aggregates))
	for i, a := range o.Aggregates {
		names[i] = a.Name
	}
	return names
}

// having compiles an output's result filter, which must be boolean.
func (p *parser) having(n *yaml.Node, path string, o *Output) *Program {
	prog, t := p.compileIn(n, path, resultScope(o, nil))
	if prog == nil {
		return nil
	}
	if k := t.Kind(); k != types.BoolKind && k != types.DynKind && k != types.AnyKind {
		p.errorf(n, path, fmt.Sprintf("compare something, e.g. '%s > 10'", firstAggregate(o)),
			"having must be a boolean expression, this one is %s", typeName(t))
		return nil
	}
	return prog
}

func firstAggregate(o *Output) string {
	if len(o.Aggregates) == 0 {
		return "count"
	}
	return o.Aggregates[0].Name
}
