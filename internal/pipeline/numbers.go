package pipeline

import (
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	celparser "github.com/google/cel-go/parser"
)

// Numbers as users write them. Every number an expression reads at run
// time is a double: JSON numbers, derived numbers and result columns alike.
// CEL keeps int and double apart (1.5 / 2 has no overload), so an integer
// a user writes next to such a number is made a double before the
// expression is planned:
//
//  1. the expression is checked with numbers read at run time typed dyn,
//     and with checker-only overloads of + - * / for (double, int) and
//     (int, double), so that mixing type-checks and the type of every
//     subexpression is known;
//  2. numberRewriter turns, in + - * /, == != < <= > >= and the branches
//     of ? :, every int operand whose partner is a double or a dyn into a
//     double: a literal 1000 becomes 1000.0, anything else (size(tags))
//     becomes double(...);
//  3. the rewritten expression is checked again with the real types and
//     no extra overloads, and planned from that environment.
//
// Integer arithmetic between ints (size(tags) / 2) stays integer, as in
// CEL. % has no double version: a % of a field is reported by validate.

// mixedOps are the operators with checker-only (double, int) overloads.
var mixedOps = []string{operators.Add, operators.Subtract, operators.Multiply, operators.Divide}

// numericOps are the calls whose int operands meet a double partner.
var numericOps = map[string]bool{
	operators.Add: true, operators.Subtract: true, operators.Multiply: true, operators.Divide: true,
	operators.Equals: true, operators.NotEquals: true, operators.Less: true, operators.LessEquals: true,
	operators.Greater: true, operators.GreaterEquals: true, operators.Conditional: true,
}

// mixedDecls declares the checker-only overloads of step 1. They have no
// bindings: the environment that has them never plans a program.
func mixedDecls() []cel.EnvOption {
	var opts []cel.EnvOption
	for _, op := range mixedOps {
		opts = append(opts, cel.Function(op,
			cel.Overload("pulse_mixed_double_int_"+op, []*cel.Type{cel.DoubleType, cel.IntType}, cel.DoubleType),
			cel.Overload("pulse_mixed_int_double_"+op, []*cel.Type{cel.IntType, cel.DoubleType}, cel.DoubleType)))
	}
	return opts
}

// numberRewriter is step 2, a CEL AST optimizer. Its input is checked
// with the types of step 1; the static optimizer checks its output again.
type numberRewriter struct{}

func (numberRewriter) Optimize(ctx *cel.OptimizerContext, a *ast.AST) *ast.AST {
	ast.PostOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.CallKind || !numericOps[e.AsCall().FunctionName()] {
			return
		}
		args := e.AsCall().Args()
		i, j := 0, 1
		if e.AsCall().FunctionName() == operators.Conditional {
			i, j = 1, 2
		}
		if len(args) <= j {
			return
		}
		ti, tj := a.GetType(args[i].ID()), a.GetType(args[j].ID())
		switch {
		case ti.Kind() == types.IntKind && doubleLike(tj):
			args[i] = toDouble(ctx, args[i])
		case tj.Kind() == types.IntKind && doubleLike(ti):
			args[j] = toDouble(ctx, args[j])
		}
	}))
	return a
}

func doubleLike(t *types.Type) bool {
	return t.Kind() == types.DoubleKind || t.Kind() == types.DynKind
}

// toDouble returns e as a double: a literal in place (it keeps its
// position for error messages), anything else wrapped in double().
func toDouble(ctx *cel.OptimizerContext, e ast.Expr) ast.Expr {
	if e.Kind() == ast.LiteralKind {
		if v, ok := e.AsLiteral().(types.Int); ok {
			e.SetKindCase(ctx.NewLiteral(types.Double(v)))
			return e
		}
	}
	return ctx.NewCall("double", e)
}

// badModulo returns the first % whose operand is a double or a dyn (a
// number read at run time): it has no overload.
func badModulo(a *ast.AST) ast.Expr {
	var bad ast.Expr
	ast.PostOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if bad != nil || e.Kind() != ast.CallKind || e.AsCall().FunctionName() != operators.Modulo {
			return
		}
		for _, arg := range e.AsCall().Args() {
			if doubleLike(a.GetType(arg.ID())) {
				bad = e
			}
		}
	}))
	return bad
}

// hasFunc is the function has(x) expands to; the @ keeps it from users
// (CEL refuses a function named like its has() macro).
const hasFunc = "@has"

// hasField is has(x) for a plain name x: true when the field (or result
// column) x is there and not null. CEL's own has() takes only a selection,
// has(device.model); it still does.
func hasField() []cel.EnvOption {
	macro := cel.GlobalMacro(operators.Has, 1, func(eh celparser.ExprHelper, target ast.Expr, args []ast.Expr) (ast.Expr, *common.Error) {
		if args[0].Kind() == ast.IdentKind {
			return eh.NewCall(hasFunc, args[0]), nil
		}
		return celparser.MakeHas(eh, target, args)
	})
	fn := cel.Function(hasFunc,
		cel.Overload("pulse_has_field", []*cel.Type{cel.DynType}, cel.BoolType,
			// Non-strict: a missing field is an error value, which the
			// function receives instead of failing the expression.
			cel.OverloadIsNonStrict(),
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				return types.Bool(!types.IsUnknownOrError(v) && v != types.NullValue)
			})))
	return []cel.EnvOption{cel.Macros(macro), fn}
}
