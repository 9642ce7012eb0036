package pipeline

import (
	"strings"
	"testing"

	"github.com/google/cel-go/common/types"
)

// TestNumbersAsWritten evaluates expressions that mix the integers users
// write with the doubles events hold.
func TestNumbersAsWritten(t *testing.T) {
	ev := map[string]any{"latency_ms": 250.0, "x": 3.0, "tags": []any{"a", "b"}, "level": "error", "gone": types.NullValue,
		"device": map[string]any{"model": "m1"}}
	for _, c := range []struct {
		src  string
		want any
	}{
		{"latency_ms / 1000", 0.25},
		{"x * 2 + 1", 7.0},
		{"1 + 2 * x", 7.0},
		{"x - 1 == 2", true},
		{"x != 3", false},
		{"x > 2 && x < 4 && x >= 3 && x <= 3", true},
		{"size(tags) * x", 6.0},
		{"x / size(tags)", 1.5},
		{"size(tags) / 2", int64(1)}, // ints stay ints
		{"(x > 1 ? 10 : x) / 4", 2.5},
		{"[1, 2].map(i, i * x)[1]", 6.0},
		{"math.round(latency_ms / 100) * 100", 300.0},
		{"int(x) % 2", int64(1)},
		{"has(level) && level == \"error\"", true},
		{"has(missing) && missing == \"error\"", false},
		{"has(gone)", false},
		{"!has(missing) || missing > 1", true},
		{"has(device.model)", true},
	} {
		p := &parser{file: "x.yaml"}
		prog, _ := p.compile(scalar(c.src), "derive.v")
		if prog == nil {
			t.Errorf("%s: %v", c.src, p.errs)
			continue
		}
		out, _, err := prog.Prog.Eval(ev)
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		if got := out.Value(); got != c.want {
			t.Errorf("%s = %v (%T), want %v (%T)", c.src, got, got, c.want, c.want)
		}
	}
}

// TestNumbersRejected checks that what cannot work at run time is refused
// when the file is validated, with a hint.
func TestNumbersRejected(t *testing.T) {
	for _, c := range []struct {
		derive    string
		msg, hint string
	}{
		{"s: 'zone + \"-\"'\n  v: 's * 2'", "no matching overload", "a string times a number"},
		{"v: 'x % 2'", "% of a number with a fraction (at column 3", "int(x) % 2"},
		{"v: '\"a\" * 2'", "no matching overload", "a string times a number"},
		{"v: 'frobnicate(x)'", "undeclared reference to 'frobnicate'", "no such function"},
		{"v: 'true ? 1 : 2.5'", "no matching overload", "write 2.0 for 2"},
		{"v: '\"a\" * 2.5'", "applied to '(string, double)'", "a string times a number"},
		{"b: 'x > 1'\n  v: 'b * 2'", "no matching overload", "a string times a number"},
	} {
		src := head + "derive:\n  " + c.derive + "\noutputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}}\n"
		_, err := Parse("bad.yaml", []byte(src))
		if err == nil {
			t.Errorf("%s: no error", c.derive)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), c.hint) {
			t.Errorf("%s: %v, want %q with hint %q", c.derive, err, c.msg, c.hint)
		}
	}
}
