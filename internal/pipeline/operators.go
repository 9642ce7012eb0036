package pipeline

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"go.yaml.in/yaml/v3"

	"github.com/pulsehq/pulse/internal/event"
)

// Events configures an events output: one result per event that passes
// Where, with the projected Fields (Output.Columns, typed).
type Events struct {
	// Where keeps the events for which it is true; nil keeps every
	// event. It reads the event's fields after the pipeline's derive and
	// this output's own Derive.
	Where *Program
	// Derive adds fields for this output only, in order.
	Derive []Derived
	// Fields are the projected fields, in order; Output.Columns holds them
	// with their types.
	Fields []string
	// Upstream, when the source is another pipeline's output, names the
	// columns of the upstream row's identity (besides its time) that a
	// row's event_id (ColEventID) is made of: an events output's
	// event_id, any other output's group columns (Output.Groups). Link
	// sets it; it is nil for a topic source, whose event_id is the
	// source record's position.
	Upstream []string
}

var (
	eventsKeys = []string{"where", "derive", "fields"}
	// windowOnly are the output keys only window outputs have.
	windowOnly = []string{"window", "aggregates", "emit", "having", "computed"}
	typeNames  = map[string]ColumnType{
		"string": TypeString, "int64": TypeInt64, "float64": TypeFloat64, "bool": TypeBool, "timestamp": TypeTimestamp,
	}
	// rowReserved are names an events or detect row writes itself.
	rowReserved = []string{"output", "key", "time", "window_start", "window_end", "final"}
)

const (
	eventsExample = "e.g. events: {where: 'latency_ms > 500.0', fields: {service: string, latency_ms: float64}}"
)

// typeLabel names a column type as pipeline files write it.
func typeLabel(t ColumnType) string {
	for name, x := range typeNames {
		if x == t {
			return name
		}
	}
	if t == TypeDecimal {
		return "decimal"
	}
	return fmt.Sprintf("ColumnType(%d)", uint8(t))
}

// InputFields returns the event fields an events, detect or join output
// reads (a join's also its group fields): what the stages must carry for
// it. A window
// output's are its aggregates' fields.
func (o *Output) InputFields() []string {
	var out []string
	add := func(f string) {
		if !contains(out, f) {
			out = append(out, f)
		}
	}
	switch {
	case o.Kind == KindEvents && o.Events != nil:
		own := map[string]bool{}
		for _, d := range o.Events.Derive {
			own[d.Name] = true
		}
		var reads []string
		if o.Events.Where != nil {
			reads = append(reads, o.Events.Where.Fields...)
		}
		for _, d := range o.Events.Derive {
			reads = append(reads, d.Expr.Fields...)
		}
		reads = append(reads, o.Events.Fields...)
		reads = append(reads, o.Events.Upstream...) // the event_id
		for _, f := range reads {
			if !own[f] {
				add(f)
			}
		}
	case o.Kind == KindDetect && o.Detect != nil:
		for _, f := range o.Detect.Fields {
			add(f)
		}
	case o.Kind == KindJoin && o.Join != nil:
		add(o.Join.Key)
		for _, g := range o.GroupBy {
			add(g)
		}
		for _, f := range o.Join.Fields {
			add(f.Name)
		}
	}
	return out
}

// outputKind reads which operator an output runs from its keys (events:,
// detect:, else a window) and reports the keys that do not belong to it.
func (p *parser) outputKind(n *yaml.Node, m map[string]*yaml.Node, path string) OutputKind {
	_, ev := m["events"]
	_, dt := m["detect"]
	kind, key, hint := KindWindow, "", ""
	switch {
	case ev && dt:
		p.errorf(keyNode(n, "detect"), join(path, "detect"), "an output runs one operator: put the detector in an output of its own",
			"the output has both events and detect")
		return KindEvents
	case ev:
		kind, key, hint = KindEvents, "events", "an events output writes each event as it comes, without a window; aggregate in another output"
	case dt:
		kind, key, hint = KindDetect, "detect", "a detect output scores each event in event-time order, without a window; aggregate in another output"
	default:
		return KindWindow
	}
	for _, k := range windowOnly {
		if _, ok := m[k]; ok {
			p.errorf(keyNode(n, k), join(path, k), "remove "+k+": "+hint, "%s belongs to window outputs, not to a %s output", k, key)
		}
	}
	return kind
}

// operator parses the events: or detect: key of output o (its kind set by
// outputKind) and fills o's Events or Detect and Columns.
func (p *parser) operator(n *yaml.Node, path string, plan *Plan, o *Output) bool {
	errs := len(p.errs)
	for _, g := range o.GroupBy {
		if contains(rowReserved, g) {
			p.errorf(keyNode(n, "group_by"), join(path, "group_by"), "rename the field with a derive, e.g. derive: {"+g+"_name: "+g+"}",
				"%s is a column every row of the output has; it cannot be a group field", g)
		}
	}
	switch o.Kind {
	case KindEvents:
		if contains(o.GroupBy, ColEventID) {
			p.errorf(keyNode(n, "group_by"), join(path, "group_by"), "rename the field with a derive, e.g. derive: {"+ColEventID+"_value: "+ColEventID+"}",
				"%s is a column of every events row (the event it was made of); it cannot be a group field", ColEventID)
		}
		p.events(valueNode(n, "events"), join(path, "events"), plan, o)
	case KindDetect:
		p.detect(valueNode(n, "detect"), join(path, "detect"), plan, o)
		for _, c := range o.Columns {
			if contains(o.GroupBy, c.Name) {
				p.errorf(keyNode(n, "group_by"), join(path, "group_by"), "rename the field with a derive, e.g. derive: {"+c.Name+"_name: "+c.Name+"}",
					"%s is a column of every detect row; it cannot be a group field", c.Name)
			}
		}
	}
	return len(p.errs) == errs
}

func (p *parser) events(n *yaml.Node, path string, plan *Plan, o *Output) {
	m, ok := p.fields(n, path, eventsExample, eventsKeys...)
	if !ok {
		return
	}
	ev := &Events{}
	o.Events = ev
	own := map[string]ColumnType{} // this output's derived fields, by type (0: unknown)
	if v, ok := m["derive"]; ok && !isNull(v) {
		ev.Derive = p.ownDerive(v, join(path, "derive"), o.GroupBy, own)
	}
	if v, ok := m["where"]; ok && !isNull(v) {
		wp := join(path, "where")
		if prog, t := p.compile(v, wp); prog != nil {
			if k := t.Kind(); k != types.BoolKind && k != types.DynKind && k != types.AnyKind {
				p.errorf(v, wp, "compare something, e.g. 'latency_ms > 500.0' or 'level == \"error\"'",
					"where must be a boolean expression, this one is %s", typeName(t))
			} else {
				ev.Where = prog
			}
		}
	}
	v, ok := m["fields"]
	if !ok {
		p.errorf(n, join(path, "fields"), "list the fields each row holds, e.g. fields: {service: string, latency_ms: float64}", "the events output has no fields")
		return
	}
	fp := join(path, "fields")
	var decls []entry // a list's entries have no value (no type)
	switch v = deref(v); {
	case v != nil && v.Kind == yaml.SequenceNode:
		for _, c := range v.Content {
			decls = append(decls, entry{key: deref(c)})
		}
	case v != nil && v.Kind == yaml.MappingNode:
		decls, _ = p.entries(v, fp, "")
	default:
		p.errorf(v, fp, "e.g. fields: [zone, speed_kmh] or fields: {service: string, latency_ms: float64}", "expected a list or a mapping of fields, found %s", describe(v))
		return
	}
	if len(decls) == 0 {
		p.errorf(v, fp, "list the fields each row holds, e.g. fields: {service: string, latency_ms: float64}", "fields is empty")
	}
	for _, d := range decls {
		name, ok := p.field(d.key, fp)
		if !ok {
			continue
		}
		at := join(fp, name)
		if contains(ev.Fields, name) {
			p.errorf(d.key, at, "remove the duplicate", "%s is listed twice", name)
			continue
		}
		switch {
		case contains(o.GroupBy, name):
			p.errorf(d.key, at, "remove it from fields: every row holds its group fields", "%s is already a group_by field of the output", name)
			continue
		case name == plan.Source.TimeField:
			p.errorf(d.key, at, "remove it: every row holds the event time as time", "%s is the event-time field", name)
			continue
		case contains(rowReserved, name) || name == ColEventID:
			p.errorf(d.key, at, "rename it with a derive, e.g. derive: {"+name+"_value: "+name+"}", "%s is a column every row has already", name)
			continue
		}
		known, from := own[name], "this output's derive"
		if _, derived := own[name]; !derived {
			known, from = knownType(plan, name)
		}
		t := known
		if d.val != nil && !isNull(d.val) {
			s, ok := p.str(d.val, at, "a type: "+typeList())
			if !ok {
				continue
			}
			dt, ok := typeNames[s]
			if !ok {
				p.errorf(d.val, at, didYouMean(s, typeNameList()), "unknown type %q", s)
				continue
			}
			if known != 0 && dt != known && !(known == TypeInt64 && dt == TypeFloat64) {
				p.errorf(d.val, at, fmt.Sprintf("write %s: %s, or leave the type out", name, typeLabel(known)), "%s is a %s (%s), not a %s", name, typeLabel(known), from, typeLabel(dt))
				continue
			}
			t = dt
		}
		if t == 0 {
			p.errorf(d.key, at, fmt.Sprintf("declare its type: fields: {%s: TYPE}, TYPE one of %s", name, typeList()),
				"the type of %s is not known (it is neither in the source's schema nor a derived field of a known type)", name)
			continue
		}
		ev.Fields = append(ev.Fields, name)
		o.Columns = append(o.Columns, Column{Name: name, Type: t})
	}
}

// ownDerive compiles an events output's derived fields, recording their
// types in types (0 when CEL cannot tell).
func (p *parser) ownDerive(n *yaml.Node, path string, groupBy []string, known map[string]ColumnType) []Derived {
	es, ok := p.entries(n, path, "e.g. derive: {latency_s: 'latency_ms / 1000.0'}")
	if !ok {
		return nil
	}
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.key.Value
	}
	var out []Derived
	for i, e := range es {
		at := join(path, e.key.Value)
		name, okName := p.name(e.key, at, "derived field")
		prog, t := p.compile(e.val, at)
		if !okName || prog == nil {
			continue
		}
		if contains(groupBy, name) {
			p.errorf(e.key, at, "derive it in the pipeline's derive to group by it", "%s is a group_by field of the output", name)
			continue
		}
		for _, f := range prog.Fields {
			if j := indexOf(names, f); j > i {
				p.errorf(e.val, at, fmt.Sprintf("derive is ordered: move %s above %s", f, name), "uses %s, which is derived later", f)
			}
		}
		if !storable(t) {
			p.errorf(e.val, at, "convert the result, e.g. with double(), string() or int()",
				"a derived field must be a number, a string, a boolean or a timestamp, this one is %s", typeName(t))
			continue
		}
		known[name] = celColumn(t)
		out = append(out, Derived{Name: name, Expr: prog})
	}
	return out
}

// valueNode returns the value of key in mapping n, or nil.
func valueNode(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return deref(n.Content[i+1])
		}
	}
	return nil
}

// knownType returns the type of an event field when the pipeline knows
// it: from the source's schema or the CEL type of a derived field; 0
// when it does not. from says where the type comes from.
func knownType(plan *Plan, field string) (ColumnType, string) {
	for i := len(plan.Derive) - 1; i >= 0; i-- {
		if d := plan.Derive[i]; d.Name == field {
			return celColumn(celTypeOf(d.Expr.Source)), "the pipeline's derive"
		}
	}
	if plan.Source.Schema == "city" {
		switch field {
		case "sensor_id", "zone", "kind":
			return TypeString, "the city schema"
		}
		if _, ok := event.MetricByName(field); ok {
			return TypeFloat64, "a metric of the city schema"
		}
	}
	return 0, ""
}

// celTypeOf type-checks a compiled expression again, its identifiers dyn
// as compile declares them, and returns its type (nil if it fails).
func celTypeOf(src string) *types.Type {
	base, err := baseEnv()
	if err != nil {
		return nil
	}
	parsed, iss := base.Parse(src)
	if iss.Err() != nil {
		return nil
	}
	var vars []cel.EnvOption
	for _, id := range freeIdents(parsed.NativeRep().Expr()) {
		vars = append(vars, cel.Variable(id, cel.DynType))
	}
	env, err := base.Extend(vars...)
	if err != nil {
		return nil
	}
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		return nil
	}
	return checked.OutputType()
}

// celColumn maps a CEL type to a column type; 0 for dyn and the rest.
func celColumn(t *types.Type) ColumnType {
	if t == nil {
		return 0
	}
	switch t.Kind() {
	case types.BoolKind:
		return TypeBool
	case types.DoubleKind:
		return TypeFloat64
	case types.IntKind, types.UintKind:
		return TypeInt64
	case types.StringKind:
		return TypeString
	case types.TimestampKind:
		return TypeTimestamp
	}
	return 0
}

func typeNameList() []string {
	return []string{"string", "int64", "float64", "bool", "timestamp"}
}

func typeList() string { return strings.Join(typeNameList(), ", ") }
