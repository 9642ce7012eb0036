package pipeline

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	"go.yaml.in/yaml/v3"
)

// baseEnv is CEL's standard library plus the strings and math extensions,
// has(field) and comparisons across int and double; every expression
// extends it with its identifiers.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	opts := append([]cel.EnvOption{ext.Strings(), ext.Math(), cel.CrossTypeNumericComparisons(true)}, hasField()...)
	return cel.NewEnv(opts...)
})

// typeIdents are identifiers CEL itself defines (type names usable in
// type(x) == int); they are never event fields.
var typeIdents = map[string]bool{
	"bool": true, "bytes": true, "double": true, "dyn": true, "int": true, "list": true,
	"map": true, "null_type": true, "string": true, "type": true, "uint": true,
}

// namespaces prefix extension functions (math.abs); they are not columns.
var namespaces = map[string]bool{"math": true, "strings": true}

// intRE and doubleRE find the types in a checker's "applied to '(string,
// int)'" ("string" holds "int").
var (
	intRE    = regexp.MustCompile(`\bint\b`)
	doubleRE = regexp.MustCompile(`\bdouble\b`)
)

const celHint = "expressions are CEL; see the operators and functions in docs/pipelines.md#expressions"

// scope says what the identifiers of an expression are.
type scope struct {
	// types are the identifiers whose type is known (derived fields,
	// result columns); any other identifier is an event field of type dyn.
	types map[string]*cel.Type
	// columns, when set, are the only identifiers there are (the columns
	// of a result, in order): any other one is an error.
	columns []string
	what    string // what the columns are, for errors: "column"
	// later are names defined below the expression (computed fields): an
	// expression that reads one is told to reorder them.
	later []string
}

// compile parses, checks and plans one CEL expression over event fields.
func (p *parser) compile(n *yaml.Node, path string) (*Program, *types.Type) {
	return p.compileIn(n, path, scope{})
}

// compileIn parses, checks and plans one CEL expression in sc, making the
// integers written next to run-time numbers doubles (see numbers.go). It
// reports errors at n's position and returns nil on failure.
func (p *parser) compileIn(n *yaml.Node, path string, sc scope) (*Program, *types.Type) {
	src, ok := p.str(n, path, "a CEL expression, e.g. 'speed_kmh > 0'")
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
	if sc.columns != nil && !p.knownColumns(n, path, src, free, sc) {
		return nil, nil
	}
	var vars, discovery []cel.EnvOption
	for _, id := range free {
		t, known := sc.types[id]
		if !known {
			if sc.columns != nil { // a namespace
				continue
			}
			t = cel.DynType
		}
		vars = append(vars, cel.Variable(id, t))
		if t.Kind() == types.DoubleKind {
			t = cel.DynType // step 1: a number read at run time
		}
		discovery = append(discovery, cel.Variable(id, t))
	}
	final, err := base.Extend(vars...)
	if err != nil {
		p.errorf(n, path, celHint, "invalid expression %q: %v", src, err)
		return nil, nil
	}
	disc, err := base.Extend(append(discovery, mixedDecls()...)...)
	if err != nil {
		p.errorf(n, path, celHint, "invalid expression %q: %v", src, err)
		return nil, nil
	}
	checked, iss := disc.Check(parsed)
	if iss.Err() != nil {
		p.celErrors(n, path, src, iss)
		return nil, nil
	}
	if e := badModulo(checked.NativeRep()); e != nil {
		p.errorf(n, path, "% takes whole numbers, and numbers read from events and results are doubles (they may have a fraction): write e.g. int(x) % 2",
			"invalid expression %q: %% of a number with a fraction (at column %d of the expression)", src, checked.NativeRep().SourceInfo().GetStartLocation(e.ID()).Column()+1)
		return nil, nil
	}
	opt, err := cel.NewStaticOptimizer(numberRewriter{})
	if err != nil {
		p.errorf(n, path, "", "cannot set up CEL: %v", err)
		return nil, nil
	}
	checked, iss = opt.Optimize(final, checked)
	if iss.Err() != nil {
		p.celErrors(n, path, src, iss)
		return nil, nil
	}
	prog, err := final.Program(checked, cel.EvalOptions(cel.OptOptimize))
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

// knownColumns reports an identifier of a result expression that is no
// column, with the columns as the hint.
func (p *parser) knownColumns(n *yaml.Node, path, src string, free []string, sc scope) bool {
	for _, id := range free {
		if _, ok := sc.types[id]; ok || namespaces[id] {
			continue
		}
		if contains(sc.later, id) {
			p.errorf(n, path, fmt.Sprintf("computed fields are ordered: move %s above this one", id),
				"uses %s, which is computed later", id)
			return false
		}
		hint := sc.what + "s: " + strings.Join(sc.columns, ", ")
		if s := suggest(id, sc.columns); s != "" {
			hint = "did you mean " + s + "? " + hint
		}
		p.errorf(n, path, hint, "invalid expression %q: unknown %s %s", src, sc.what, id)
		return false
	}
	return true
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
	switch all := iss.Err().Error(); {
	case strings.Contains(all, "undeclared reference"):
		hint = "no such function; " + celHint
	case strings.Contains(all, "no matching overload") && intRE.MatchString(all) && doubleRE.MatchString(all):
		hint = "this int and this double do not mix: write 2.0 for 2, or convert with double(...) or int(...)"
	case strings.Contains(all, "no matching overload"):
		hint = "the operands do not fit the operator or function (e.g. a string times a number); convert with double(), int() or string()"
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
	p.derived = map[string]*cel.Type{}
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.key.Value
	}
	for i, e := range es {
		path := join("derive", e.key.Value)
		name, okName := p.name(e.key, path, "derived field")
		prog, t := p.compileIn(e.val, path, scope{types: p.derived})
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
		p.derived[name] = derivedType(t)
	}
	return out
}

// derivedType is the type a later expression reads a derived field as: a
// derived number, timestamp or duration is held as a double (epoch ms,
// seconds).
func derivedType(t *types.Type) *cel.Type {
	switch t.Kind() {
	case types.StringKind:
		return cel.StringType
	case types.BoolKind:
		return cel.BoolType
	case types.DoubleKind, types.IntKind, types.UintKind, types.TimestampKind, types.DurationKind:
		return cel.DoubleType
	}
	return cel.DynType
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
		types.NullTypeKind, types.DynKind, types.AnyKind,
		types.TimestampKind, types.DurationKind: // a timestamp becomes epoch ms, a duration seconds
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
	prog, t := p.compileIn(n, "where", scope{types: p.derived})
	if prog == nil {
		return nil
	}
	if k := t.Kind(); k != types.BoolKind && k != types.DynKind && k != types.AnyKind {
		p.errorf(n, "where", "compare something, e.g. 'speed_kmh > 0' or 'kind != \"test\"'",
			"where must be a boolean expression, this one is %s", typeName(t))
		return nil
	}
	return prog
}
