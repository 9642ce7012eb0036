package pipeline

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func scalar(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Line: 1, Column: 1}
}

// head starts a valid pipeline (lines 1-5); the invalid cases go on from it.
const head = `name: t
source:
  topic: in
  key: id
  time: {field: ts}
`

// havingOut is an output (lines 6-10) that having and computed cases go on
// from.
const havingOut = "outputs:\n  - name: o\n    group_by: [zone]\n    window: {tumbling: 1m}\n    aggregates: {errors: count(), total: sum(n)}\n"

type wantErr struct {
	line, col int
	path      string
	msg, hint string // substrings
}

var invalidCases = []struct {
	name string
	yaml string
	want wantErr
}{
	{"unknown key with suggestion", head + "outputs:\n  - name: o\n    windw: {tumbling: 1m}\n    window: {tumbling: 1m}\n    aggregates: {n: count()}\n",
		wantErr{8, 5, "outputs[0].windw", `unknown key "windw"`, "did you mean window?"}},
	{"unknown key without suggestion", "name: t\nfoo: 1\n" + head[8:] + "outputs: []\n",
		wantErr{2, 1, "foo", `unknown key "foo"`, "allowed keys: name, description, source, event_time, where, derive, outputs"}},
	{"missing name", head[8:] + "outputs:\n  - name: o\n    window: {tumbling: 1m}\n    aggregates: {n: count()}\n",
		wantErr{1, 1, "name", "the pipeline has no name", "name: city"}},
	{"bad name", "name: My-Pipeline\n" + head[8:] + "outputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}}\n",
		wantErr{1, 7, "name", `"My-Pipeline" is not a valid pipeline name`, "lower-case"}},
	{"bad duration", head + "outputs:\n  - name: o\n    window: {tumbling: 1 minute}\n    aggregates: {n: count()}\n",
		wantErr{8, 24, "outputs[0].window.tumbling", `"1 minute" is not a duration`, "e.g. 500ms, 5s, 1m"}},
	{"negative lateness", head + "event_time: {allowed_lateness: -1s}\noutputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}}\n",
		wantErr{6, 32, "event_time.allowed_lateness", "must not be negative", "0s"}},
	{"retention not a duration", head + "outputs:\n  - name: o\n    window: {tumbling: 1m}\n    aggregates: {n: count()}\n    retention: 30 days\n",
		wantErr{10, 16, "outputs[0].retention", `"30 days" is not a retention`, "30d, 2w"}},
	{"retention fractional days", head + "outputs:\n  - name: o\n    window: {tumbling: 1m}\n    aggregates: {n: count()}\n    retention: 1.5d\n",
		wantErr{10, 16, "outputs[0].retention", "must be a whole number", "d: days"}},
	{"retention too short", head + "outputs:\n  - name: o\n    window: {tumbling: 1m}\n    aggregates: {n: count()}\n    retention: 10s\n",
		wantErr{10, 16, "outputs[0].retention", "retention 10s is shorter than 1m0s", "leave retention out"}},
	{"two window kinds", head + "outputs:\n  - name: o\n    window:\n      tumbling: 1m\n      session: {gap: 5m}\n    aggregates: {n: count()}\n",
		wantErr{10, 7, "outputs[0].window", "the window is both tumbling and session", "another output"}},
	{"no window kind", head + "outputs:\n  - name: o\n    window: {}\n    aggregates: {n: count()}\n",
		wantErr{8, 13, "outputs[0].window", "the window has no kind", "tumbling: 1m"}},
	{"hopping slide > size", head + "outputs:\n  - name: o\n    window:\n      hopping: {size: 1m, slide: 5m}\n    aggregates: {n: count()}\n",
		wantErr{9, 34, "outputs[0].window.hopping.slide", "slide 5m is larger than size 1m", "at most size"}},
	{"hopping size not a multiple", head + "outputs:\n  - name: o\n    window:\n      hopping: {size: 5m, slide: 2m}\n    aggregates: {n: count()}\n",
		wantErr{9, 34, "outputs[0].window.hopping.slide", "size 5m is not a multiple of slide 2m", "slide: 1m"}},
	{"unknown aggregate function", head + "outputs:\n  - name: o\n    window: {tumbling: 1m}\n    aggregates:\n      speed: averag(speed)\n",
		wantErr{10, 14, "outputs[0].aggregates.speed", "unknown aggregate function averag", "known functions: count, sum, avg"}},
	{"aggregate field missing", head + "outputs:\n  - name: o\n    window: {tumbling: 1m}\n    aggregates:\n      speed: avg()\n",
		wantErr{10, 14, "outputs[0].aggregates.speed", "avg needs an input field", "avg(speed_kmh)"}},
	{"aggregate syntax", head + "outputs:\n  - name: o\n    window: {tumbling: 1m}\n    aggregates:\n      speed: avg speed\n",
		wantErr{10, 14, "outputs[0].aggregates.speed", `"avg speed" is not an aggregate`, "func(field)"}},
	{"reserved result name", head + "outputs:\n  - name: o\n    window: {tumbling: 1m}\n    aggregates:\n      window_start: first(ts)\n",
		wantErr{10, 7, "outputs[0].aggregates.window_start", "window_start is a reserved result field name", "reserved: output, key, window_start"}},
	{"duplicate result name", head + "outputs:\n  - name: o\n    window: {tumbling: 1m}\n    aggregates:\n      n: count()\n      n: sum(x)\n",
		wantErr{11, 7, "outputs[0].aggregates.n", "n is defined twice", "remove one"}},
	{"duplicate output", head + "outputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}}\n  - {name: o, window: {tumbling: 5m}, aggregates: {n: count()}}\n",
		wantErr{8, 6, "outputs[1].name", "output o is already defined at outputs[0]", "its own name"}},
	{"output topic is the source", head + "outputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}, topic: in}\n",
		wantErr{7, 65, "outputs[0].topic", "topic in is a source topic", "another topic"}},
	{"output topic is internal", head + "outputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}, topic: t.x.changelog}\n",
		wantErr{7, 65, "outputs[0].topic", "topic t.x.changelog looks like one of Pulse's internal topics", "does not end in .repartition"}},
	{"unknown sink", head + "outputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}, sinks: [postgres]}\n",
		wantErr{7, 73, "outputs[0].sinks[0]", `unknown sink "postgres"`, "use sqlite"}},
	{"missing source", "name: t\noutputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}}\n",
		wantErr{1, 1, "source", "the pipeline has no source", "topic: city"}},
	{"topic and topics", "name: t\nsource:\n  topic: a\n  topics: [b]\n  key: id\n  time: {field: ts}\noutputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}}\n",
		wantErr{4, 3, "source.topics", "source has both topic and topics", "topic: for one topic"}},
	{"bad time format", "name: t\nsource:\n  topic: a\n  key: id\n  time: {field: ts, format: epoch_sec}\noutputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}}\n",
		wantErr{5, 29, "source.time.format", `unknown time format "epoch_sec"`, "did you mean epoch_s?"}},
	{"CEL syntax error", head + "where: 'speed >'\noutputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}}\n",
		wantErr{6, 8, "where", `invalid expression "speed >": Syntax error`, "docs/pipelines.md#expressions"}},
	{"non-boolean where", head + "where: speed_kmh * 1.5\noutputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}}\n",
		wantErr{6, 8, "where", "where must be a boolean expression, this one is a double", "speed_kmh > 0"}},
	{"derive unknown function", head + "derive:\n  x: 'speed_kmh + 1.0'\n  y: 'round(x)'\noutputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}}\n",
		wantErr{8, 6, "derive.y", "undeclared reference to 'round' (at column 6 of the expression)", "no such function"}},
	{"derive uses a later field", head + "derive:\n  x: 'y * 2.0'\n  y: 'speed / 3.6'\noutputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}}\n",
		wantErr{7, 6, "derive.x", "uses y, which is derived later", "move y above x"}},
	{"derive a list", head + "derive:\n  x: '[a, b]'\noutputs:\n  - {name: o, window: {tumbling: 1m}, aggregates: {n: count()}}\n",
		wantErr{7, 6, "derive.x", "must be a number, a string, a boolean or a timestamp, this one is a list(dyn)", "double()"}},
	{"having unknown column", head + havingOut + "    having: errros > 10\n",
		wantErr{11, 13, "outputs[0].having", `invalid expression "errros > 10": unknown column errros`, "did you mean errors? columns: zone, window_start, window_end, errors, total"}},
	{"computed unknown column", head + havingOut + "    computed:\n      ratio: 'errors / totl'\n",
		wantErr{12, 14, "outputs[0].computed.ratio", "unknown column totl", "did you mean total? columns: zone, window_start, window_end, errors, total"}},
	{"computed uses a later one", head + havingOut + "    computed:\n      pct: 'ratio * 100'\n      ratio: 'errors / total'\n",
		wantErr{12, 12, "outputs[0].computed.pct", "uses ratio, which is computed later", "move ratio above this one"}},
	{"computed of unknown type", head + havingOut + "    computed:\n      s: 'dyn(total)'\n",
		wantErr{12, 10, "outputs[0].computed.s", "a computed field must be a number, a string, a boolean, a timestamp or a duration, this one is a dyn", "convert the result"}},
	{"computed named like an aggregate", head + havingOut + "    computed:\n      total: 'errors * 2'\n",
		wantErr{12, 7, "outputs[0].computed.total", "total is already an aggregate of the output", "rename it"}},
	{"computed reserved name", head + havingOut + "    computed:\n      window_end: 'window_start'\n",
		wantErr{12, 7, "outputs[0].computed.window_end", "window_end is a reserved result field name", "rename it"}},
	{"non-boolean having", head + havingOut + "    having: errors * 2\n",
		wantErr{11, 13, "outputs[0].having", "having must be a boolean expression, this one is a double", "errors > 10"}},
	{"having string times number", head + havingOut + "    having: zone * 2 > 1\n",
		wantErr{11, 13, "outputs[0].having", "no matching overload for '_*_' applied to '(string, int)'", "a string times a number"}},
	{"having modulo", head + havingOut + "    having: errors % 2 == 0\n",
		wantErr{11, 13, "outputs[0].having", "% of a number with a fraction", "int(x) % 2"}},
	{"outputs not a list", head + "outputs:\n  name: o\n",
		wantErr{7, 3, "outputs", "expected a list, found a mapping", "- name:"}},
	{"invalid YAML", head + "outputs:\n  - name: o\n   window: x\n",
		wantErr{6, 1, "", "invalid YAML", "indentation"}},
	{"empty file", "# nothing\n", wantErr{0, 0, "", "the file is empty", "name:"}},
	{"two documents", minimal + "---\n" + minimal, wantErr{10, 1, "", "this is a second YAML document", "own file"}},
}

func TestInvalid(t *testing.T) {
	for _, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Parse("bad.yaml", []byte(tc.yaml))
			if plan != nil || err == nil {
				t.Fatalf("no error; plan %+v", plan)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %v is not Errors", err, err)
			}
			w := tc.want
			for _, e := range errs {
				if e.Line == w.line && e.Col == w.col && e.Path == w.path && e.File == "bad.yaml" &&
					strings.Contains(e.Msg, w.msg) && strings.Contains(e.Hint, w.hint) {
					return
				}
			}
			t.Errorf("no error %d:%d %s: %q (hint %q) among:\n%v", w.line, w.col, w.path, w.msg, w.hint, err)
		})
	}
}

func TestManyErrorsAtOnce(t *testing.T) {
	src := `name: t
source:
  topic: in
  time: {field: ts, format: iso}
event_time: {max_out_of_orderness: 5}
where: 'x +'
outputs:
  - name: a
    window: {tumbling: 0s}
    aggregates: {n: count(), key: sum(x)}
  - name: B
    window: {session: {gap: 1m}}
    aggregates: {m: median(x)}
`
	_, err := Parse("many.yaml", []byte(src))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v", err)
	}
	want := []string{
		"many.yaml:3:3: source.key: source has no key",
		"many.yaml:4:29: source.time.format: unknown time format \"iso\"",
		"many.yaml:5:36: event_time.max_out_of_orderness: \"5\" is not a duration",
		"many.yaml:6:8: where: invalid expression \"x +\"",
		"many.yaml:9:24: outputs[0].window.tumbling: must be greater than 0, found 0s",
		"many.yaml:10:30: outputs[0].aggregates.key: key is a reserved result field name",
		"many.yaml:11:11: outputs[1].name: \"B\" is not a valid output name",
		"many.yaml:13:21: outputs[1].aggregates.m: unknown aggregate function median",
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i := range min(len(errs), len(want)) {
		if !strings.HasPrefix(errs[i].Error(), want[i]) {
			t.Errorf("error %d:\n got %s\nwant %s…", i, errs[i], want[i])
		}
	}
}

func TestErrorFormat(t *testing.T) {
	e := Error{File: "f.yaml", Line: 3, Col: 7, Path: "outputs[1].window", Msg: "bad", Hint: "fix it"}
	if got, want := e.Error(), "f.yaml:3:7: outputs[1].window: bad (hint: fix it)"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	e = Error{File: "f.yaml", Msg: "bad"}
	if got, want := e.Error(), "f.yaml: bad"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if got := (Errors{e, e}).Error(); got != "f.yaml: bad\nf.yaml: bad" {
		t.Errorf("Errors: %q", got)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"tumbling", "hopping", "session"}
	for in, want := range map[string]string{"tumbing": "tumbling", "hoping": "hopping", "sesion": "session", "window": "", "": ""} {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
