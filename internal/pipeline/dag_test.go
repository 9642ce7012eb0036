package pipeline

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const upstream = `name: logs
source: {topic: logs, key: service, time: {field: ts}}
outputs:
  - name: errors_1m
    group_by: [service]
    window: {tumbling: 1m}
    aggregates: {errors: count(), latency_avg: avg(latency_ms), first_level: first(level)}
`

func mustParse(t *testing.T, file, src string) *Plan {
	t.Helper()
	p, err := Parse(file, []byte(src))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return p
}

func TestLinkResolves(t *testing.T) {
	up := mustParse(t, "logs.yaml", upstream)
	down := mustParse(t, "spikes.yaml", `name: spikes
source: {pipeline: logs, output: errors_1m}
outputs:
  - name: per_5m
    group_by: [service]
    window: {tumbling: 5m}
    aggregates: {errors: sum(errors), peak: max(errors)}
`)
	if err := Link([]*Plan{up, down}); err != nil {
		t.Fatal(err)
	}
	src := down.Source
	if !reflect.DeepEqual(src.Topics, []string{"logs.errors_1m"}) || src.TimeField != ColWindowStart ||
		src.TimeFormat != "rfc3339" || src.KeyField != "service" || src.Format != "json" {
		t.Errorf("source %+v", src)
	}
	var cols []string
	for _, c := range src.Columns {
		cols = append(cols, c.Name+":"+c.Type.String())
	}
	want := []string{"service:string", "window_start:timestamp", "window_end:timestamp", "errors:int64", "latency_avg:float64", "first_level:any"}
	if !reflect.DeepEqual(cols, want) {
		t.Errorf("columns %v, want %v", cols, want)
	}
	// Linking again changes nothing.
	if err := Link([]*Plan{up, down}); err != nil || !reflect.DeepEqual(down.Source, src) {
		t.Errorf("second link: %v, %+v", err, down.Source)
	}
}

func TestLinkErrors(t *testing.T) {
	tests := []struct {
		name, down string
		want       []string // in the error, in order
	}{
		{"unknown pipeline", `name: d
source: {pipeline: lgos, output: errors_1m}
outputs: [{name: o, window: {tumbling: 1m}, aggregates: {n: count()}}]
`, []string{"source.pipeline", "no pipeline lgos", "did you mean logs?"}},
		{"unknown output", `name: d
source: {pipeline: logs, output: errors_5m}
outputs: [{name: o, window: {tumbling: 1m}, aggregates: {n: count()}}]
`, []string{"source.output", "pipeline logs has no output errors_5m", "did you mean errors_1m?"}},
		{"unknown field", `name: d
source: {pipeline: logs, output: errors_1m}
outputs: [{name: o, group_by: [servce], window: {tumbling: 1m}, aggregates: {n: count()}}]
`, []string{"outputs[0].group_by", "field servce is not a column of logs.errors_1m", "did you mean service?", "its columns: service, window_start"}},
		{"unknown aggregate field", `name: d
source: {pipeline: logs, output: errors_1m}
outputs: [{name: o, window: {tumbling: 1m}, aggregates: {n: sum(error)}}]
`, []string{"outputs[0].aggregates.n", "field error is not a column", "did you mean errors?"}},
		{"string aggregated", `name: d
source: {pipeline: logs, output: errors_1m}
outputs: [{name: o, window: {tumbling: 1m}, aggregates: {n: avg(service)}}]
`, []string{"outputs[0].aggregates.n", "avg(service): column service of logs.errors_1m is a string, not a number", "use count or count_distinct"}},
		{"unknown field in where", `name: d
source: {pipeline: logs, output: errors_1m}
where: 'erors > 10.0'
outputs: [{name: o, window: {tumbling: 1m}, aggregates: {n: count()}}]
`, []string{"where", "field erors is not a column"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := mustParse(t, "logs.yaml", upstream)
			down := mustParse(t, "d.yaml", tt.down)
			err := Link([]*Plan{up, down})
			if err == nil {
				t.Fatal("linked")
			}
			msg := err.Error()
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q (in order)", msg, w)
				}
				rest = rest[i+len(w):]
			}
			var errs Errors
			if !errors.As(err, &errs) || errs[0].File != "d.yaml" {
				t.Errorf("error not in d.yaml: %#v", err)
			}
			// Every case's problem is on the file's line 2 or 3 (the
			// source, the where, or the one-line outputs).
			if e := errs[0]; e.Line < 2 || e.Line > 4 || e.Col == 0 {
				t.Errorf("error at %d:%d, want the key's line: %v", e.Line, e.Col, e)
			}
		})
	}
}

func TestLinkCycle(t *testing.T) {
	a := mustParse(t, "a.yaml", `name: a
source: {pipeline: c, output: o}
outputs: [{name: o, window: {tumbling: 1m}, aggregates: {n: count()}}]
`)
	b := mustParse(t, "b.yaml", `name: b
source: {pipeline: a, output: o}
outputs: [{name: o, window: {tumbling: 1m}, aggregates: {n: count()}}]
`)
	c := mustParse(t, "c.yaml", `name: c
source: {pipeline: b, output: o}
outputs: [{name: o, window: {tumbling: 1m}, aggregates: {n: count()}}]
`)
	self := mustParse(t, "self.yaml", `name: self
source: {pipeline: self, output: o}
outputs: [{name: o, window: {tumbling: 1m}, aggregates: {n: count()}}]
`)
	err := Link([]*Plan{a, b, c, self})
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err %v", err)
	}
	var cyc []string
	for _, e := range errs {
		if strings.Contains(e.Msg, "cycle") {
			cyc = append(cyc, e.Msg)
		}
	}
	want := []string{"pipelines read each other in a cycle: a → b → c → a", "pipelines read each other in a cycle: self → self"}
	if !reflect.DeepEqual(cyc, want) {
		t.Errorf("cycles %q, want %q", cyc, want)
	}
}

func TestLinkedSourceParse(t *testing.T) {
	_, err := Parse("d.yaml", []byte(`name: d
source: {pipeline: logs, topic: x, key: service, time: {field: ts}}
outputs: [{name: o, window: {tumbling: 1m}, aggregates: {n: count()}}]
`))
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	for _, w := range []string{"source.pipeline has no output", "source has both a topic and a pipeline", "source.key does not apply to a pipeline's output", "source.time does not apply"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
}

func TestLinkChanges(t *testing.T) {
	tests := []struct {
		name, eventTime, window string
		changes                 bool
	}{
		{"tumbling, no lateness", "", "{tumbling: 1m}", false},
		{"hopping, no lateness", "", "{hopping: {size: 2m, slide: 1m}}", false},
		{"allowed lateness", "event_time: {allowed_lateness: 30s}\n", "{tumbling: 1m}", true},
		{"session", "", "{session: {gap: 5m}}", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := mustParse(t, "up.yaml", "name: up\nsource: {topic: in, key: k, time: {field: ts}}\n"+tt.eventTime+
				"outputs: [{name: o, group_by: [k], window: "+tt.window+", aggregates: {n: count()}}]\n")
			down := mustParse(t, "down.yaml", `name: down
source: {pipeline: up, output: o}
outputs: [{name: w, group_by: [k], window: {tumbling: 5m}, aggregates: {n: sum(n)}}]
`)
			err := Link([]*Plan{up, down})
			if down.Source.Changes != tt.changes {
				t.Errorf("changes %v, want %v", down.Source.Changes, tt.changes)
			}
			if tt.changes {
				if err == nil || !strings.Contains(err.Error(), "a window cannot read up.o") || !strings.Contains(err.Error(), "read it with a detect or events output") {
					t.Errorf("err %v", err)
				}
			} else if err != nil {
				t.Errorf("err %v", err)
			}
		})
	}
}
