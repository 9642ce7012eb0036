package pipeline

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// A join output enriches each event with the current row of a table:
//
//	- name: enriched
//	  group_by: [tx_id]
//	  fields: {tx_id: string, amount: double, merchant_id: string}
//	  join:
//	    table: merchants            # a compacted topic: latest JSON value per record key
//	    key: merchant_id            # the event field whose value is the table key
//	    fields: {name: string, category: string, risk: double}
//	    missing: drop               # or "null": keep the event, table fields null
//
// An output is a join output when it has a join key; it has no window and
// no aggregates.

var (
	joinOutputKeys = []string{"name", "group_by", "fields", "join", "topic", "sinks", "retention", "live", "archive"}
	joinKeys       = []string{"table", "key", "fields", "missing"}
	joinMissing    = []string{"drop", "null"}
	joinTypes      = []string{"string", "int", "double", "bool", "timestamp", "decimal"}
)

const joinExample = "e.g. join: {table: merchants, key: merchant_id, fields: {name: string, risk: double}}"

// isJoinOutput reports whether output n is a join output (it has a join
// key).
func isJoinOutput(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && n.Kind == yaml.MappingNode && keyNode(n, "join") != n
}

// joinOutput parses a join output.
func (p *parser) joinOutput(n *yaml.Node, path, pipeline string) (Output, bool) {
	o := Output{Kind: KindJoin, Sinks: []string{"sqlite"}, Live: true, Join: &Join{}}
	m, ok := p.fields(n, path, "a join output has name, fields and join; "+joinExample, joinOutputKeys...)
	if !ok {
		return o, false
	}
	errs := len(p.errs)
	if v, ok := m["name"]; ok {
		o.Name, _ = p.name(v, join(path, "name"), "output")
	} else {
		p.errorf(n, join(path, "name"), "add e.g. name: enriched", "the output has no name")
	}
	if v, ok := m["group_by"]; ok && !isNull(v) {
		o.GroupBy, _ = p.list(v, join(path, "group_by"), "e.g. group_by: [tx_id]", p.field)
	}
	used := map[string]string{} // result column -> where it is defined
	for _, g := range o.GroupBy {
		used[g] = "a group_by field"
	}
	if v, ok := m["fields"]; ok && !isNull(v) {
		o.Join.Fields = p.joinColumns(v, join(path, "fields"), "an event field", used)
	}
	if v, ok := m["join"]; ok {
		p.joinSpec(v, join(path, "join"), o.Join, used)
	}
	o.Columns = append(append([]Column{}, o.Join.Fields...), o.Join.TableFields...)
	o.Topic = pipeline + "." + o.Name
	if v, ok := m["topic"]; ok {
		o.Topic, _ = p.topic(v, join(path, "topic"))
	}
	if o.Join.Table != "" && o.Join.Table == o.Topic {
		p.errorf(keyNode(n, "topic"), join(path, "topic"), "write the results to another topic", "topic %s is the output's table", o.Topic)
	}
	if v, ok := m["sinks"]; ok {
		o.Sinks, _ = p.list(v, join(path, "sinks"), "e.g. sinks: [sqlite]", p.joinSinkName)
	}
	if v, ok := m["archive"]; ok {
		o.Archive, _ = p.archive(v, join(path, "archive"))
	}
	if v, ok := m["retention"]; ok && !isNull(v) {
		o.Retention, _ = p.retention(v, join(path, "retention"))
	}
	if v, ok := m["live"]; ok {
		o.Live, _ = p.boolean(v, join(path, "live"))
	}
	return o, len(p.errs) == errs
}

// joinSpec parses the join mapping of a join output into j.
func (p *parser) joinSpec(n *yaml.Node, path string, j *Join, used map[string]string) {
	m, ok := p.fields(n, path, joinExample, joinKeys...)
	if !ok {
		return
	}
	if v, ok := m["table"]; ok {
		if t, ok := p.topic(v, join(path, "table")); ok {
			j.Table = t
			if internalTopic(t) {
				p.errorf(v, join(path, "table"), "a table is a compacted topic of your own, e.g. merchants", "topic %s looks like one of Pulse's internal topics", t)
			}
		}
	} else {
		p.errorf(n, join(path, "table"), "add the table's topic, e.g. table: merchants", "the join has no table")
	}
	if v, ok := m["key"]; ok {
		j.Key, _ = p.field(v, join(path, "key"))
	} else {
		p.errorf(n, join(path, "key"), "add the event field that holds the table key, e.g. key: merchant_id", "the join has no key")
	}
	if v, ok := m["fields"]; ok {
		j.TableFields = p.joinColumns(v, join(path, "fields"), "a table field", used)
		if len(j.TableFields) == 0 && len(deref(v).Content) == 0 {
			p.errorf(v, join(path, "fields"), "e.g. fields: {name: string, risk: double}", "the join adds no table fields")
		}
	} else {
		p.errorf(n, join(path, "fields"), "add the table fields to add, e.g. fields: {name: string, risk: double}", "the join has no fields")
	}
	if v, ok := m["missing"]; ok {
		// missing: null is YAML's null; "null" quoted is the string.
		s := v.Value
		if !isNull(v) || s != "null" {
			s, ok = p.str(v, join(path, "missing"), "use "+oneOf(joinMissing))
			if !ok {
				return
			}
		}
		switch s {
		case "drop":
			j.Missing = MissingDrop
		case "null":
			j.Missing = MissingNull
		default:
			p.errorf(v, join(path, "missing"), didYouMean(s, joinMissing), "unknown missing %q", s)
		}
	}
}

// joinColumns parses a mapping of column names to types: the event
// fields (what: "an event field") or table fields ("a table field") of a
// join. used holds
// the columns defined so far, and gets these.
func (p *parser) joinColumns(n *yaml.Node, path, what string, used map[string]string) []Column {
	es, ok := p.entries(n, path, "e.g. fields: {amount: double, merchant_id: string}")
	if !ok {
		return nil
	}
	var out []Column
	for _, e := range es {
		name, fp := e.key.Value, join(path, e.key.Value)
		okName := true
		switch {
		case contains(reserved, name):
			p.errorf(e.key, fp, "rename it; reserved: "+strings.Join(reserved, ", "), "%s is a reserved result field name", name)
			okName = false
		case used[name] != "":
			p.errorf(e.key, fp, "give each result column its own name", "%s is already %s of the output", name, used[name])
			okName = false
		default:
			_, okName = p.field(e.key, fp)
		}
		t, okType := p.joinType(e.val, fp)
		if okName && okType {
			used[name] = what
			out = append(out, Column{Name: name, Type: t})
		}
	}
	return out
}

// joinType reads a column type name.
func (p *parser) joinType(n *yaml.Node, path string) (ColumnType, bool) {
	s, ok := p.str(n, path, "use "+oneOf(joinTypes))
	if !ok {
		return 0, false
	}
	i := indexOf(joinTypes, s)
	if i < 0 {
		p.errorf(n, path, didYouMean(s, joinTypes), "unknown type %q", s)
		return 0, false
	}
	return [...]ColumnType{TypeString, TypeInt64, TypeFloat64, TypeBool, TypeTimestamp, TypeDecimal}[i], true
}

// joinSinkName reads the name of a sink.
func (p *parser) joinSinkName(n *yaml.Node, path string) (string, bool) {
	s, ok := p.str(n, path, "use "+oneOf(sinkNames))
	if ok && !contains(sinkNames, s) {
		p.errorf(n, path, didYouMean(s, sinkNames), "unknown sink %q", s)
		return "", false
	}
	return s, ok
}
