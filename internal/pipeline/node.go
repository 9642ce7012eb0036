package pipeline

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"go.yaml.in/yaml/v3"
)

var (
	nameRE  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	fieldRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	topicRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

const durationHint = "write a number with a unit, e.g. 500ms, 5s, 1m or 1h30m"

// parser collects the errors of one file.
type parser struct {
	file string
	errs Errors
	// derived holds the type later expressions read each derived field as.
	derived map[string]*cel.Type
	// pos holds where each key read was in the file, by path.
	pos map[string][2]int
}

func (p *parser) errorf(n *yaml.Node, path, hint, format string, args ...any) {
	e := Error{File: p.file, Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	p.errs = append(p.errs, e)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// deref follows aliases (bounded, in case of a cycle).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names what a node holds, for "expected X, found Y" messages.
func describe(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("%q", v)
	}
	return "an unsupported YAML node"
}

// entry is one key: value pair of a mapping.
type entry struct {
	key, val *yaml.Node
}

// entries returns the pairs of mapping n in order, reporting a node that is
// not a mapping, keys that are not names and duplicate keys (which are
// dropped).
func (p *parser) entries(n *yaml.Node, path, example string) ([]entry, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		p.errorf(n, path, example, "expected a mapping, found %s", describe(n))
		return nil, false
	}
	var out []entry
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k == nil || k.Kind != yaml.ScalarNode || isNull(k) {
			p.errorf(k, path, "", "keys must be names, found %s", describe(k))
			continue
		}
		if seen[k.Value] {
			p.errorf(k, join(path, k.Value), "remove one of them", "%s is defined twice", k.Value)
			continue
		}
		seen[k.Value] = true
		out = append(out, entry{k, v})
	}
	return out, true
}

// fields returns the values of mapping n by key, reporting unknown keys with
// a suggestion.
func (p *parser) fields(n *yaml.Node, path, example string, allowed ...string) (map[string]*yaml.Node, bool) {
	es, ok := p.entries(n, path, example)
	if !ok {
		return nil, false
	}
	m := make(map[string]*yaml.Node, len(es))
	for _, e := range es {
		k := e.key.Value
		if !contains(allowed, k) {
			hint := "allowed keys: " + strings.Join(allowed, ", ")
			if s := suggest(k, allowed); s != "" {
				hint = "did you mean " + s + "?"
			}
			p.errorf(e.key, join(path, k), hint, "unknown key %q", k)
			continue
		}
		m[k] = e.val
		p.remember(join(path, k), e.key)
	}
	return m, true
}

// remember notes where the key at path is in the file, for the errors of
// checks that run after parsing.
func (p *parser) remember(path string, key *yaml.Node) {
	if p.pos == nil {
		p.pos = map[string][2]int{}
	}
	p.pos[path] = [2]int{key.Line, key.Column}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// keyNode returns the key node of key in mapping n, for positions.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return n
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return n
}

// str reads a non-empty scalar.
func (p *parser) str(n *yaml.Node, path, example string) (string, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || isNull(n) || strings.TrimSpace(n.Value) == "" {
		p.errorf(n, path, example, "expected a value, found %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// name reads a [a-z][a-z0-9_]* name; what says whose ("output").
func (p *parser) name(n *yaml.Node, path, what string) (string, bool) {
	s, ok := p.str(n, path, "e.g. name: city")
	if !ok {
		return "", false
	}
	if !nameRE.MatchString(s) {
		p.errorf(n, path, "use lower-case letters, digits and _, starting with a letter", "%q is not a valid %s name", s, what)
		return "", false
	}
	return s, true
}

// field reads the name of an event field.
func (p *parser) field(n *yaml.Node, path string) (string, bool) {
	s, ok := p.str(n, path, "e.g. sensor_id")
	if !ok {
		return "", false
	}
	if !fieldRE.MatchString(s) {
		p.errorf(n, path, "field names are letters, digits and _, not starting with a digit", "%q is not a valid field name", s)
		return "", false
	}
	return s, true
}

// topic reads a Kafka topic name.
func (p *parser) topic(n *yaml.Node, path string) (string, bool) {
	s, ok := p.str(n, path, "e.g. city")
	if !ok {
		return "", false
	}
	if !topicRE.MatchString(s) || len(s) > 249 || s == "." || s == ".." {
		p.errorf(n, path, "topic names are at most 249 letters, digits, '.', '_' and '-'", "%q is not a valid topic name", s)
		return "", false
	}
	return s, true
}

// list reads a sequence of scalars with read, reporting duplicates.
func (p *parser) list(n *yaml.Node, path, example string, read func(*yaml.Node, string) (string, bool)) ([]string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		p.errorf(n, path, example, "expected a list, found %s", describe(n))
		return nil, false
	}
	out := []string{}
	ok := true
	for i, c := range n.Content {
		c = deref(c)
		s, good := read(c, index(path, i))
		if !good {
			ok = false
			continue
		}
		if contains(out, s) {
			p.errorf(c, index(path, i), "remove the duplicate", "%s is listed twice", s)
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}

// boolean reads true or false.
func (p *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	var b bool
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.errorf(n, path, "write true or false", "expected true or false, found %s", describe(n))
		return false, false
	}
	return b, true
}

// duration reads a Go duration; positive requires > 0, otherwise >= 0.
func (p *parser) duration(n *yaml.Node, path string, positive bool) (time.Duration, bool) {
	s, ok := p.str(n, path, durationHint)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		p.errorf(n, path, durationHint, "%q is not a duration", s)
		return 0, false
	}
	switch {
	case positive && d <= 0:
		p.errorf(n, path, durationHint, "must be greater than 0, found %s", s)
		return 0, false
	case d < 0:
		p.errorf(n, path, "write 0s or a positive duration, e.g. 5s", "must not be negative, found %s", s)
		return 0, false
	}
	return d, true
}

// windowDuration reads a window size, slide or gap: > 0 and a whole number
// of milliseconds (event times are in milliseconds).
func (p *parser) windowDuration(n *yaml.Node, path string) (time.Duration, bool) {
	d, ok := p.duration(n, path, true)
	if ok && d%time.Millisecond != 0 {
		p.errorf(n, path, "event times are in milliseconds, e.g. 1m or 250ms", "%s is not a whole number of milliseconds", n.Value)
		return 0, false
	}
	return d, ok
}
