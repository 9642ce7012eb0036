package pipeline

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	"go.yaml.in/yaml/v3"
)

// baseEnv is CEL's standard library plus the strings and math extensions;
// every expression extends it with its free identifiers as dyn variables.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(ext.Strings(), ext.Math())
})

// typeIdents are identifiers CEL itself defines (type names usable in
// type(x) == int); they are never event fields.
var typeIdents = map[string]bool{
	"bool": true, "bytes": true, "double": true, "dyn": true, "int": true, "list": true,
	"map": true, "null_type": true, "string": true, "type": true, "uint": true,
}

const celHint = "expressions are CEL; see the operators and functions in docs/pipelines.md#expressions"

// compile parses, checks and plans one CEL expression. It reports errors at
// n's position and returns nil on failure.
func (p *parser) compile(n *yaml.Node, path string) (*Program, *types.Type) {
	src, ok := p.str(n, path, "a CEL expression, e.g. 'speed_kmh > 0.0'")
	if !ok {
		return nil, nil
	}
	base, err := baseEnv()
	if err != nil {
		p.errorf(n, path, "", "cannot set up CEL: %v", err)
		return nil, nil
	}
	parsed, iss := base.Parse(src)
	if iss.Err() != nil {
		p.celErrors(n, path, src, iss)
		return nil, nil
	}
	free := freeIdents(parsed.NativeRep().Expr())
	vars := make([]cel.EnvOption, len(free))
	for i, id := range free {
		vars[i] = cel.Variable(id, cel.DynType)
	}
	env, err := base.Extend(vars...)
	if err != nil {
		p.errorf(n, path, celHint, "invalid expression %q: %v", src, err)
		return nil, nil
	}
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		p.celErrors(n, path, src, iss)
		return nil, nil
	}
	prog, err := env.Program(checked, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		p.errorf(n, path, celHint, "invalid expression %q: %v", src, err)
		return nil, nil
	}
	// The checker may have turned some identifiers into something else
	// (math.abs(x) is a function, not field math): read the fields from
	// the checked expression.
	fields := freeIdents(checked.NativeRep().Expr())
	return &Program{Source: src, Prog: prog, Fields: fields}, checked.OutputType()
}

func (p *parser) celErrors(n *yaml.Node, path, src string, iss *cel.Issues) {
	multiline := strings.Contains(strings.TrimSpace(src), "\n")
	var msgs []string
	for _, e := range iss.Errors() {
		at := fmt.Sprintf("column %d", e.Location.Column()+1)
		if multiline {
			at = fmt.Sprintf("line %d, column %d", e.Location.Line(), e.Location.Column()+1)
		}
		msg := strings.TrimSuffix(e.Message, " (in container '')")
		if i := strings.Index(msg, " expecting {"); i > 0 { // ANTLR's list of tokens
			msg = msg[:i]
		}
		msg = strings.Replace(msg, "mismatched input '<EOF>'", "unexpected end of the expression", 1)
		msgs = append(msgs, fmt.Sprintf("%s (at %s of the expression)", msg, at))
	}
	hint := celHint
	if strings.Contains(iss.Err().Error(), "undeclared reference") {
		hint = "no such function; " + celHint
	}
	p.errorf(n, path, hint, "invalid expression %q: %s", src, strings.Join(msgs, "; "))
}

// freeIdents returns the sorted identifiers e reads that are bound neither
// by a comprehension (all(), exists(), map(), filter()) nor by CEL itself.
func freeIdents(e ast.Expr) []string {
	out := map[string]bool{}
	walkIdents(e, map[string]int{}, out)
	ids := make([]string, 0, len(out))
	for id := range out {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func walkIdents(e ast.Expr, bound map[string]int, out map[string]bool) {
	if e == nil {
		return
	}
	switch e.Kind() {
	case ast.IdentKind:
		if id := e.AsIdent(); bound[id] == 0 && !typeIdents[id] {
			out[id] = true
		}
	case ast.SelectKind:
		walkIdents(e.AsSelect().Operand(), bound, out)
	case ast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			walkIdents(c.Target(), bound, out)
		}
		for _, a := range c.Args() {
			walkIdents(a, bound, out)
		}
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			walkIdents(el, bound, out)
		}
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			walkIdents(me.Key(), bound, out)
			walkIdents(me.Value(), bound, out)
		}
	case ast.StructKind:
		for _, en := range e.AsStruct().Fields() {
			walkIdents(en.AsStructField().Value(), bound, out)
		}
	case ast.ComprehensionKind:
		c := e.AsComprehension()
		walkIdents(c.IterRange(), bound, out)
		walkIdents(c.AccuInit(), bound, out)
		vars := []string{c.IterVar(), c.AccuVar()}
		if c.HasIterVar2() {
			vars = append(vars, c.IterVar2())
		}
		for _, v := range vars {
			bound[v]++
		}
		walkIdents(c.LoopCondition(), bound, out)
		walkIdents(c.LoopStep(), bound, out)
		walkIdents(c.Result(), bound, out)
		for _, v := range vars {
			bound[v]--
		}
	}
}

// derive compiles the ordered derived fields.
func (p *parser) derive(n *yaml.Node) []Derived {
	es, ok := p.entries(n, "derive", "e.g. derive: {speed_ms: 'speed_kmh / 3.6'}")
	if !ok {
		return nil
	}
	var out []Derived
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.key.Value
	}
	for i, e := range es {
		path := join("derive", e.key.Value)
		name, okName := p.name(e.key, path, "derived field")
		prog, t := p.compile(e.val, path)
		if !okName || prog == nil {
			continue
		}
		for _, f := range prog.Fields {
			if j := indexOf(names, f); j > i {
				p.errorf(e.val, path, fmt.Sprintf("derive is ordered: move %s above %s", f, name),
					"uses %s, which is derived later", f)
			}
		}
		if !storable(t) {
			p.errorf(e.val, path, "convert the result, e.g. with double(), string() or int()",
				"a derived field must be a number, a string, a boolean or a timestamp, this one is %s", typeName(t))
			continue
		}
		out = append(out, Derived{Name: name, Expr: prog})
	}
	return out
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// storable reports whether an expression of type t yields an event value.
func storable(t *types.Type) bool {
	switch t.Kind() {
	case types.BoolKind, types.DoubleKind, types.IntKind, types.UintKind, types.StringKind,
		types.NullTypeKind, types.DynKind, types.AnyKind, types.TimestampKind: // a timestamp becomes epoch ms
		return true
	}
	return false
}

func typeName(t *types.Type) string {
	s := t.String()
	if strings.HasPrefix(s, "google.protobuf.") {
		return "a " + strings.ToLower(strings.TrimPrefix(s, "google.protobuf."))
	}
	switch t.Kind() {
	case types.IntKind, types.UintKind:
		return "an " + s
	}
	return "a " + s
}

// where compiles the filter, which must be boolean.
func (p *parser) where(n *yaml.Node) *Program {
	if isNull(n) {
		return nil
	}
	prog, t := p.compile(n, "where")
	if prog == nil {
		return nil
	}
	if k := t.Kind(); k != types.BoolKind && k != types.DynKind && k != types.AnyKind {
		p.errorf(n, "where", "compare something, e.g. 'speed_kmh > 0.0' or 'kind != \"test\"'",
			"where must be a boolean expression, this one is %s", typeName(t))
		return nil
	}
	return prog
}
