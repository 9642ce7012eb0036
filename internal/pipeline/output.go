package pipeline

import (
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pulsehq/pulse/internal/aggregate"
)

// MaxHops bounds size/slide of a hopping window: each event is added to
// that many windows.
const MaxHops = 1000

var (
	outputKeys  = []string{"name", "group_by", "window", "aggregates", "computed", "having", "emit", "topic", "sinks", "retention", "live", "archive", "events", "detect"}
	windowKinds = []string{"tumbling", "hopping", "session"}
	hoppingKeys = []string{"size", "slide"}
	sessionKeys = []string{"gap"}
	emitKeys    = []string{"partials"}
	sinkNames   = []string{"sqlite"}
	// reserved are the field names the results API uses itself.
	reserved = []string{"output", "key", "window_start", "window_end", "final", "retract"}
	aggRE    = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*([^()]*?)\s*\)\s*$`)
)

// ArchiveColumns are the columns the Parquet archive adds to each result
// of an output with archive: true (internal/archive): the event time,
// the record's key, partition and offset, and its kind (insert, update
// or delete). No result column of an archived output may have one of
// these names.
var ArchiveColumns = []string{"event_time", "key", "kafka_partition", "kafka_offset", "kind"}

const archiveHint = "write archive: true to keep the output's results in the Parquet archive, or archive: false (the default)"

const outputExample = "e.g. {name: zone_1m, group_by: [zone], window: {tumbling: 1m}, aggregates: {count: count()}}"

// MaxOutputs is the most outputs one pipeline may have (the engine reports
// late events per output in a 64-bit set).
const MaxOutputs = 64

func (p *parser) outputs(n *yaml.Node, plan *Plan) []Output {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		p.errorf(n, "outputs", "outputs is a list: each item starts with '- name: ...'", "expected a list, found %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.errorf(n, "outputs", outputExample, "the pipeline has no outputs")
		return nil
	}
	if len(n.Content) > MaxOutputs {
		p.errorf(n, "outputs", "split the pipeline into several files", "the pipeline has %d outputs, at most %d are allowed", len(n.Content), MaxOutputs)
		return nil
	}
	var outs []Output
	names := map[string]string{}  // output name -> path
	topics := map[string]string{} // topic -> output name
	for i, c := range n.Content {
		path := index("outputs", i)
		var o Output
		var ok bool
		if isJoinOutput(c) {
			o, ok = p.joinOutput(deref(c), path, plan.Name)
		} else if o, ok = p.output(deref(c), path, plan.Name); ok && o.Kind != KindWindow {
			ok = p.operator(deref(c), path, plan, &o) // events, detect: operators.go
		}
		if prev, dup := names[o.Name]; dup && o.Name != "" {
			p.errorf(keyNode(c, "name"), join(path, "name"), "give each output its own name", "output %s is already defined at %s", o.Name, prev)
			continue
		}
		names[o.Name] = path
		if !ok {
			continue
		}
		tn := keyNode(c, "topic")
		switch {
		case topics[o.Topic] != "":
			p.errorf(tn, join(path, "topic"), "give each output its own topic", "topic %s is also the topic of output %s", o.Topic, topics[o.Topic])
		case contains(plan.Source.Topics, o.Topic):
			p.errorf(tn, join(path, "topic"), "results must not flow back into the source; choose another topic", "topic %s is a source topic of the pipeline", o.Topic)
		case plan.Name != "" && o.Topic == LateTopic(plan.Name):
			p.errorf(tn, join(path, "topic"), "choose another topic", "topic %s receives the pipeline's late events", o.Topic)
		case internalTopic(o.Topic):
			p.errorf(tn, join(path, "topic"), "choose a name that does not end in .repartition, .changelog or .dlq", "topic %s looks like one of Pulse's internal topics", o.Topic)
		}
		topics[o.Topic] = o.Name
		if o.Archive {
			p.archivedColumns(c, path, &o)
		}
		outs = append(outs, o)
	}
	return outs
}

func (p *parser) output(n *yaml.Node, path, pipeline string) (Output, bool) {
	o := Output{Sinks: []string{"sqlite"}, Live: true}
	m, ok := p.fields(n, path, outputExample, outputKeys...)
	if !ok {
		return o, false
	}
	errs := len(p.errs)
	o.Kind = p.outputKind(n, m, path)
	if v, ok := m["name"]; ok {
		o.Name, _ = p.name(v, join(path, "name"), "output")
	} else {
		p.errorf(n, join(path, "name"), "add e.g. name: zone_1m", "the output has no name")
	}
	if v, ok := m["group_by"]; ok && !isNull(v) {
		o.GroupBy, _ = p.list(v, join(path, "group_by"), "e.g. group_by: [zone]", p.field)
	}
	if v, ok := m["window"]; ok {
		o.Window, _ = p.window(v, join(path, "window"))
	} else if o.Kind == KindWindow {
		p.errorf(n, join(path, "window"), "add e.g. window: {tumbling: 1m}", "the output has no window")
	}
	if v, ok := m["aggregates"]; ok {
		o.Aggregates = p.aggregates(v, join(path, "aggregates"), o.GroupBy)
	} else if o.Kind == KindWindow {
		p.errorf(n, join(path, "aggregates"), "add e.g. aggregates: {count: count(), speed_avg: avg(speed)}", "the output has no aggregates")
	}
	// The columns having and computed read are known once group_by and
	// aggregates are valid.
	if o.Kind != KindWindow {
		for _, k := range []string{"computed", "having"} {
			if v, ok := m[k]; ok {
				p.errorf(v, join(path, k), "filter with the output's own where and add fields with its derive",
					"%s applies to window outputs", k)
			}
		}
	} else if len(p.errs) == errs {
		if v, ok := m["computed"]; ok && !isNull(v) {
			p.computed(v, join(path, "computed"), &o)
		}
		if v, ok := m["having"]; ok && !isNull(v) {
			o.Having = p.having(v, join(path, "having"), &o)
		}
	}
	if v, ok := m["emit"]; ok {
		if em, ok := p.fields(v, join(path, "emit"), "e.g. emit: {partials: 500ms}", emitKeys...); ok {
			if pv, ok := em["partials"]; ok {
				o.Partials, _ = p.duration(pv, join(path, "emit.partials"), true)
			}
		}
	}
	o.Topic = pipeline + "." + o.Name
	if v, ok := m["topic"]; ok {
		o.Topic, _ = p.topic(v, join(path, "topic"))
	}
	if v, ok := m["sinks"]; ok {
		o.Sinks, _ = p.list(v, join(path, "sinks"), "e.g. sinks: [sqlite]", func(n *yaml.Node, path string) (string, bool) {
			s, ok := p.str(n, path, "use "+oneOf(sinkNames))
			if ok && !contains(sinkNames, s) {
				p.errorf(n, path, didYouMean(s, sinkNames), "unknown sink %q", s)
				return "", false
			}
			return s, ok
		})
	}
	if v, ok := m["retention"]; ok && !isNull(v) {
		o.Retention, _ = p.retention(v, join(path, "retention"))
	}
	if v, ok := m["live"]; ok {
		o.Live, _ = p.boolean(v, join(path, "live"))
	}
	if v, ok := m["archive"]; ok {
		o.Archive, _ = p.archive(v, join(path, "archive"))
	}
	return o, len(p.errs) == errs
}

// archive reads an output's archive: true or false.
func (p *parser) archive(n *yaml.Node, path string) (bool, bool) {
	var b bool
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.errorf(n, path, archiveHint, "expected true or false, found %s", describe(n))
		return false, false
	}
	return b, true
}

// archivedColumns reports the result columns of an archived output o
// that have the name of a column the archive adds.
func (p *parser) archivedColumns(n *yaml.Node, path string, o *Output) {
	for _, c := range o.Schema() {
		if contains(ArchiveColumns, c.Name) {
			p.errorf(keyNode(n, "archive"), join(path, "archive"),
				"rename the column (a group_by field can be renamed with derive, e.g. derive: {"+c.Name+"_value: "+c.Name+"}), or leave archive out",
				"result column %s has the name of a column the archive adds to every result (%s)", c.Name, strings.Join(ArchiveColumns, ", "))
		}
	}
}

func (p *parser) window(n *yaml.Node, path string) (Window, bool) {
	var w Window
	m, ok := p.fields(n, path, "e.g. window: {tumbling: 1m}", windowKinds...)
	if !ok {
		return w, false
	}
	var kinds []string
	for _, k := range windowKinds {
		if _, ok := m[k]; ok {
			kinds = append(kinds, k)
		}
	}
	switch len(kinds) {
	case 0:
		if len(deref(n).Content) == 0 {
			p.errorf(n, path, "e.g. window: {tumbling: 1m}", "the window has no kind: use tumbling, hopping or session")
		}
		return w, false
	case 1:
	default:
		p.errorf(keyNode(n, kinds[1]), path, "an output has one window; add another output for the other one",
			"the window is both %s and %s", kinds[0], kinds[1])
		return w, false
	}
	v := m[kinds[0]]
	kp := join(path, kinds[0])
	switch kinds[0] {
	case "tumbling":
		w.Kind = Tumbling
		w.Size, ok = p.windowDuration(v, kp)
	case "hopping":
		w.Kind = Hopping
		hm, okm := p.fields(v, kp, "e.g. hopping: {size: 5m, slide: 1m}", hoppingKeys...)
		if !okm {
			return w, false
		}
		sv, okSize := hm["size"]
		lv, okSlide := hm["slide"]
		if !okSize || !okSlide {
			p.errorf(v, kp, "e.g. hopping: {size: 5m, slide: 1m}", "a hopping window needs a size and a slide")
			return w, false
		}
		var ok1, ok2 bool
		w.Size, ok1 = p.windowDuration(sv, join(kp, "size"))
		w.Slide, ok2 = p.windowDuration(lv, join(kp, "slide"))
		if ok = ok1 && ok2; !ok {
			break
		}
		switch {
		case w.Slide > w.Size:
			p.errorf(lv, join(kp, "slide"), "make slide at most size; slide == size is a tumbling window",
				"slide %s is larger than size %s", lv.Value, sv.Value)
			ok = false
		case w.Size%w.Slide != 0:
			p.errorf(lv, join(kp, "slide"), "e.g. size: 5m with slide: 1m",
				"size %s is not a multiple of slide %s", sv.Value, lv.Value)
			ok = false
		case w.Size/w.Slide > MaxHops:
			p.errorf(lv, join(kp, "slide"), "use a larger slide",
				"each event would be in %d windows; at most %d are allowed", w.Size/w.Slide, MaxHops)
			ok = false
		}
	case "session":
		w.Kind = Session
		sm, okm := p.fields(v, kp, "e.g. session: {gap: 30m}", sessionKeys...)
		if !okm {
			return w, false
		}
		gv, okGap := sm["gap"]
		if !okGap {
			p.errorf(v, kp, "e.g. session: {gap: 30m}", "a session window needs a gap")
			return w, false
		}
		w.Gap, ok = p.windowDuration(gv, join(kp, "gap"))
	}
	return w, ok
}

func (p *parser) aggregates(n *yaml.Node, path string, groupBy []string) []Aggregate {
	es, ok := p.entries(n, path, "e.g. aggregates: {count: count(), speed_avg: avg(speed)}")
	if !ok {
		return nil
	}
	if len(es) == 0 {
		p.errorf(n, path, "e.g. aggregates: {count: count()}", "the output has no aggregates")
	}
	var out []Aggregate
	for _, e := range es {
		name, fp := e.key.Value, join(path, e.key.Value)
		p.remember(fp, e.key)
		rename := "rename it, e.g. " + name + "_value"
		if m := aggRE.FindStringSubmatch(e.val.Value); m != nil {
			rename = "rename it, e.g. " + name + "_" + m[1]
		}
		okName := true
		switch {
		case contains(reserved, name):
			p.errorf(e.key, fp, rename+"; reserved: "+strings.Join(reserved, ", "),
				"%s is a reserved result field name", name)
			okName = false
		case contains(groupBy, name):
			p.errorf(e.key, fp, rename, "%s is already a group_by field of the output", name)
			okName = false
		default:
			_, okName = p.name(e.key, fp, "result field")
		}
		a, okAgg := p.aggregate(e.val, fp)
		if okName && okAgg {
			a.Name = name
			out = append(out, a)
		}
	}
	return out
}

func (p *parser) aggregate(n *yaml.Node, path string) (Aggregate, bool) {
	const syntax = "write func() or func(field), e.g. count() or avg(speed_kmh)"
	s, ok := p.str(n, path, syntax)
	if !ok {
		return Aggregate{}, false
	}
	m := aggRE.FindStringSubmatch(s)
	if m == nil {
		p.errorf(n, path, syntax, "%q is not an aggregate", s)
		return Aggregate{}, false
	}
	fn, field := m[1], m[2]
	names := aggregate.Names()
	if !contains(names, fn) {
		hint := "known functions: " + strings.Join(names, ", ")
		if sg := suggest(fn, names); sg != "" {
			hint = "did you mean " + sg + "? " + hint
		}
		p.errorf(n, path, hint, "unknown aggregate function %s", fn)
		return Aggregate{}, false
	}
	if field == "" {
		f, ok := aggregate.Lookup(fn)
		if !ok || f.NeedsField() {
			p.errorf(n, path, "write "+fn+"(FIELD), e.g. "+fn+"(speed_kmh)", "%s needs an input field", fn)
			return Aggregate{}, false
		}
		return Aggregate{Func: f}, true
	}
	if !fieldRE.MatchString(field) {
		p.errorf(n, path, "write one field name, e.g. "+fn+"(speed_kmh)", "%q is not a valid field name", field)
		return Aggregate{}, false
	}
	f, ok := aggregate.LookupWithField(fn)
	if !ok {
		p.errorf(n, path, "write "+fn+"()", "%s takes no input field", fn)
		return Aggregate{}, false
	}
	return Aggregate{Func: f, Field: field}, true
}

// internalTopic reports whether topic is named like the topics Pulse keeps
// for itself: repartition and changelog topics of outputs, dead letters.
func internalTopic(topic string) bool {
	for _, suffix := range []string{".repartition", ".changelog", ".dlq"} {
		if strings.HasSuffix(topic, suffix) {
			return true
		}
	}
	return false
}
