package pipeline

import (
	"fmt"
	"slices"
	"strings"
)

// Link resolves the sources that read another pipeline's output
// (source: {pipeline: logs, output: errors_1m}) into that output's result
// topic and columns, and checks the graph the pipelines form: every such
// source names a pipeline and output that exist, no pipeline reads
// itself through others (a cycle), and every field a pipeline reads from
// the edge is a column of the output it reads, of a type it can use. The
// error lists every problem. Link is idempotent.
func Link(plans []*Plan) error {
	byName := map[string]*Plan{}
	for _, p := range plans {
		byName[p.Name] = p
	}
	var errs Errors
	for _, p := range plans {
		src := &p.Source
		if src.Pipeline == "" {
			continue
		}
		up, ok := byName[src.Pipeline]
		if !ok {
			errs = append(errs, Error{File: p.File, Path: "source.pipeline",
				Msg: fmt.Sprintf("no pipeline %s", src.Pipeline), Hint: didYouMean(src.Pipeline, sortedKeys(byName))})
			continue
		}
		o := up.Output(src.Output)
		if o == nil {
			var names []string
			for _, o := range up.Outputs {
				names = append(names, o.Name)
			}
			errs = append(errs, Error{File: p.File, Path: "source.output",
				Msg: fmt.Sprintf("pipeline %s has no output %s", up.Name, src.Output), Hint: didYouMean(src.Output, names)})
			continue
		}
		src.Topics = []string{o.Topic}
		src.Format = "json"
		src.Schema = ""
		src.Columns = o.Schema()
		src.Groups = o.Groups()
		src.TimeField, src.TimeFormat = ColTime, "rfc3339"
		if o.Kind == KindWindow {
			src.TimeField = ColWindowStart
		}
		src.KeyField = ""
		if len(o.GroupBy) > 0 {
			src.KeyField = o.GroupBy[0]
		}
		// An events output's rows are named by the upstream row they
		// were made of (ColEventID).
		upstream := o.Groups()
		if o.Kind == KindEvents {
			upstream = []string{ColEventID}
		}
		for i := range p.Outputs {
			if ev := p.Outputs[i].Events; ev != nil && p.Outputs[i].Kind == KindEvents {
				ev.Upstream = slices.Clone(upstream)
			}
		}
		errs = append(errs, checkEdge(p, up, o)...)
	}
	errs = append(errs, cycles(plans, byName)...)
	if len(errs) == 0 {
		// Whether an edge carries corrections depends on the upstream's
		// own source: resolved in the graph's order.
		for _, p := range plans {
			changes(p, byName, map[string]bool{})
		}
		for _, p := range plans {
			errs = append(errs, checkChanges(p)...)
		}
	}
	if len(errs) > 0 {
		for i := range errs {
			if p := byFile(plans, errs[i].File); p != nil && errs[i].Line == 0 {
				errs[i].Line, errs[i].Col = p.position(errs[i].Path)
			}
		}
		return errs
	}
	return nil
}

// byFile returns the plan read from file, or nil.
func byFile(plans []*Plan, file string) *Plan {
	for _, p := range plans {
		if p.File == file {
			return p
		}
	}
	return nil
}

// position returns where path (or the nearest key above it) was in the
// plan's file; 0, 0 when unknown.
func (p *Plan) position(path string) (line, col int) {
	for path != "" {
		if at, ok := p.positions[path]; ok {
			return at[0], at[1]
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0, 0
}

// Output returns the output called name, or nil.
func (p *Plan) Output(name string) *Output {
	for i := range p.Outputs {
		if p.Outputs[i].Name == name {
			return &p.Outputs[i]
		}
	}
	return nil
}

// Changes reports whether o may correct a result it wrote, given whether
// its pipeline's source does: a window output updates a final when a late
// event arrives within the allowed lateness, and deletes a session merged
// into another; a having filter deletes a final that an update made fail
// it; per-event outputs pass their source's corrections on.
func (o *Output) Changes(p *Plan) bool {
	switch {
	case o.Kind != KindWindow:
		return p.Source.Changes
	case o.Window.Kind == Session || p.Time.AllowedLateness > 0:
		return true
	}
	return false
}

// changes sets p.Source.Changes from its upstream, which it resolves
// first.
func changes(p *Plan, byName map[string]*Plan, done map[string]bool) bool {
	if done[p.Name] {
		return p.Source.Changes
	}
	done[p.Name] = true
	if up, ok := byName[p.Source.Pipeline]; ok && p.Source.Pipeline != "" {
		changes(up, byName, done)
		p.Source.Changes = up.Output(p.Source.Output).Changes(up)
	}
	return p.Source.Changes
}

// checkChanges refuses a window over a source that corrects its results:
// a window folds each event once and cannot take an event back, so an
// updated or deleted upstream row would be counted twice.
func checkChanges(p *Plan) Errors {
	if !p.Source.Changes {
		return nil
	}
	var errs Errors
	for i, o := range p.Outputs {
		if o.Kind != KindWindow {
			for _, g := range o.GroupBy {
				if !slices.Contains(p.Source.Groups, g) {
					errs = append(errs, Error{File: p.File, Path: index("outputs", i) + ".group_by",
						Msg: fmt.Sprintf("group_by %s: %s.%s updates and deletes its rows, and a delete carries only their group fields (%s) and time",
							g, p.Source.Pipeline, p.Source.Output, strings.Join(p.Source.Groups, ", ")),
						Hint: "group by those fields, so that a correction reaches the key it corrects"})
				}
			}
			continue
		}
		if o.Kind == KindWindow {
			errs = append(errs, Error{File: p.File, Path: index("outputs", i) + ".window",
				Msg: fmt.Sprintf("a window cannot read %s.%s: that output updates or deletes results it wrote (allowed lateness, session windows), and a window cannot take back what it folded",
					p.Source.Pipeline, p.Source.Output),
				Hint: "read it with a detect or events output (they apply updates and deletes), or give the upstream allowed_lateness: 0 and tumbling or hopping windows"})
		}
	}
	return errs
}

// checkEdge checks the fields p reads from output o of pipeline up.
func checkEdge(p, up *Plan, o *Output) Errors {
	cols := map[string]ColumnType{}
	var names []string
	for _, c := range p.Source.Columns {
		cols[c.Name] = c.Type
		names = append(names, c.Name)
	}
	for _, d := range p.Derive {
		cols[d.Name] = 0 // a derived field: its type is CEL's business
	}
	var errs Errors
	unknown := func(path, field string) {
		errs = append(errs, Error{File: p.File, Path: path,
			Msg:  fmt.Sprintf("field %s is not a column of %s.%s", field, up.Name, o.Name),
			Hint: didYouMean(field, names) + " (its columns: " + strings.Join(names, ", ") + ")"})
	}
	read := func(path string, fields []string) {
		for _, f := range fields {
			if _, ok := cols[f]; !ok {
				unknown(path, f)
			}
		}
	}
	if p.Where != nil {
		read("where", p.Where.Fields)
	}
	for i, d := range p.Derive {
		read(index("derive", i), d.Expr.Fields)
	}
	for i, out := range p.Outputs {
		path := index("outputs", i)
		read(path+".group_by", out.GroupBy)
		for _, a := range out.Aggregates {
			if a.Field == "" {
				continue
			}
			t, ok := cols[a.Field]
			switch {
			case !ok:
				unknown(path+".aggregates."+a.Name, a.Field)
			case t != 0 && !t.Numeric() && a.Func.Name() != "count" && a.Func.Name() != "count_distinct":
				errs = append(errs, Error{File: p.File, Path: path + ".aggregates." + a.Name,
					Msg:  fmt.Sprintf("%s(%s): column %s of %s.%s is a %s, not a number", a.Func.Name(), a.Field, a.Field, up.Name, o.Name, t),
					Hint: "aggregate a numeric column, or use count or count_distinct"})
			}
		}
		if d := out.Detect; d != nil {
			for _, f := range d.Fields {
				t, ok := cols[f]
				switch {
				case !ok:
					unknown(path+".detect.fields", f)
				case t != 0 && !t.Numeric():
					errs = append(errs, Error{File: p.File, Path: path + ".detect.fields",
						Msg:  fmt.Sprintf("column %s of %s.%s is a %s, not a number", f, up.Name, o.Name, t),
						Hint: "a detector watches numeric columns"})
				}
			}
		}
	}
	return errs
}

// cycles reports every pipeline that reads its own output through a chain
// of pipelines, once per cycle.
func cycles(plans []*Plan, byName map[string]*Plan) Errors {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var errs Errors
	var path []string
	var visit func(p *Plan)
	visit = func(p *Plan) {
		state[p.Name] = onPath
		path = append(path, p.Name)
		if up, ok := byName[p.Source.Pipeline]; ok && p.Source.Pipeline != "" {
			switch state[up.Name] {
			case onPath:
				i := slices.Index(path, up.Name)
				cycle := append(slices.Clone(path[i:]), up.Name)
				slices.Reverse(cycle)
				errs = append(errs, Error{File: p.File, Path: "source.pipeline",
					Msg:  "pipelines read each other in a cycle: " + strings.Join(cycle, " → "),
					Hint: "a pipeline may read another's output only if that one does not read it back; break the cycle"})
			case unseen:
				visit(up)
			}
		}
		path = path[:len(path)-1]
		state[p.Name] = done
	}
	for _, p := range plans {
		if state[p.Name] == unseen {
			visit(p)
		}
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
