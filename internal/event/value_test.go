package event

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"unicode/utf8"
)

func TestAppendJSONString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"zone-03", `"zone-03"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"line\nnext\ttab\r", `"line\nnext\ttab\r"`},
		{"\x00\x07\x1f\x7f", `"\u0000\u0007\u001f\u007f"`},
		{"Zürich 😀", `"Zürich 😀"`},
		{"bad \xff byte", "\"bad \ufffd byte\""},
	} {
		got := string(AppendJSONString(nil, tc.in))
		if got != tc.want {
			t.Errorf("AppendJSONString(%q) = %s, want %s", tc.in, got, tc.want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("%s is not a JSON string: %v", got, err)
		}
	}
}

// FuzzAppendJSONString checks that every string becomes valid JSON that
// reads back as itself (for valid UTF-8).
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00", "\xff", "Zürich"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, out, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("%q read back as %q", s, back)
		}
	})
}

func TestNumberFormat(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{-3, "-3"},
		{999999, "999999"},
		{1e6, "1000000"},
		{1404214, "1404214"},
		{-1404214, "-1404214"},
		{1 << 53, "9007199254740992"},
		{1e20, "100000000000000000000"},
		{1e21, "1e+21"},
		{12.5, "12.5"},
		{0.1, "0.1"},
		{1234567.25, "1234567.25"},
		{0.000001, "0.000001"},
		{1e-7, "1e-7"},
		{1.5e-300, "1.5e-300"},
	} {
		got := string(AppendNumber(nil, tc.in))
		if got != tc.want {
			t.Errorf("AppendNumber(%v) = %s, want %s", tc.in, got, tc.want)
		}
		if j := string(NumberValue(tc.in).AppendJSON(nil)); j != tc.want {
			t.Errorf("AppendJSON(%v) = %s, want %s", tc.in, j, tc.want)
		}
		if k := string(NumberValue(tc.in).AppendKeyText(nil)); k != tc.want {
			t.Errorf("AppendKeyText(%v) = %s, want %s", tc.in, k, tc.want)
		}
		var back float64
		if err := json.Unmarshal([]byte(got), &back); err != nil || back != tc.in {
			t.Errorf("%s reads back as %v (%v), want %v", got, back, err, tc.in)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if j := string(NumberValue(f).AppendJSON(nil)); j != "null" {
			t.Errorf("AppendJSON(%v) = %s, want null (JSON has no %v)", f, j, f)
		}
	}
	// count_distinct hashes AppendText: stored sketches depend on it.
	if s := string(NumberValue(1e6).AppendText(nil)); s != "1e+06" {
		t.Errorf("AppendText(1e6) = %s: the hashed form must not change", s)
	}
}

// FuzzAppendNumber checks that every finite float64 is written as a JSON
// number that reads back as itself, without an exponent when it is whole
// and below 1e21.
func FuzzAppendNumber(f *testing.F) {
	for _, x := range []float64{0, 1e6, -2.5, 1e21, 1e-7, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		out := AppendNumber(nil, x)
		var back float64
		if err := json.Unmarshal(out, &back); err != nil || back != x {
			t.Fatalf("%v -> %s -> %v (%v)", x, out, back, err)
		}
		if x == math.Trunc(x) && math.Abs(x) < 1e21 && bytes.ContainsAny(out, "e.") {
			t.Fatalf("whole number %v written %s", x, out)
		}
	})
}
