package pipeline

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestEventsOutput(t *testing.T) {
	plan, err := Parse("t.yaml", []byte(`name: logs
source: {topic: logs, key: service, time: {field: ts}}
derive:
  slow: 'latency_ms > 500.0'
outputs:
  - name: slow_requests
    group_by: [service]
    events:
      where: slow && level != "debug"
      derive:
        latency_s: 'latency_ms / 1000.0'
        code: 'int(status)'
      fields: {level: string, latency_ms: float64, latency_s: ~, code: ~, slow: ~, at: timestamp}
`))
	if err != nil {
		t.Fatal(err)
	}
	o := plan.Outputs[0]
	if o.Kind != KindEvents || o.Events == nil || o.Events.Where == nil || len(o.Events.Derive) != 2 {
		t.Fatalf("output %+v", o)
	}
	want := []Column{{"level", TypeString}, {"latency_ms", TypeFloat64}, {"latency_s", TypeFloat64}, {"code", TypeInt64}, {"slow", TypeBool}, {"at", TypeTimestamp}}
	if !slices.Equal(o.Columns, want) {
		t.Errorf("columns %v, want %v", o.Columns, want)
	}
	// The stages carry what the where, the derive and the projection
	// read, but not the output's own derived fields.
	in := o.InputFields()
	slices.Sort(in)
	if w := []string{"at", "latency_ms", "level", "slow", "status"}; !slices.Equal(in, w) {
		t.Errorf("input fields %v, want %v", in, w)
	}
	if o.Topic != "logs.slow_requests" || o.Describe() != "slow_requests: events by [service]" {
		t.Errorf("topic %s, describe %q", o.Topic, o.Describe())
	}
}

func TestEventsCitySchemaTypes(t *testing.T) {
	plan, err := Parse("t.yaml", []byte(`name: c
source: {topic: city, schema: city, key: sensor_id, time: {field: ts}}
outputs:
  - name: fast
    events: {where: 'speed_kmh > 100.0', fields: [sensor_id, zone, speed_kmh]}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Column{{"sensor_id", TypeString}, {"zone", TypeString}, {"speed_kmh", TypeFloat64}}
	if got := plan.Outputs[0].Columns; !slices.Equal(got, want) {
		t.Errorf("columns %v, want %v", got, want)
	}
}

func TestDetectOutput(t *testing.T) {
	plan, err := Parse("t.yaml", []byte(`name: c
source: {topic: city, schema: city, key: sensor_id, time: {field: ts}}
outputs:
  - name: speed_anomalies
    group_by: [sensor_id]
    detect: {detector: zscore, fields: [speed_kmh, flow_vph], alpha: 0.2, threshold: 2.5, warm_up: 5}
    sinks: []
  - name: defaults
    detect: {detector: zscore, fields: [speed_kmh]}
`))
	if err != nil {
		t.Fatal(err)
	}
	o := plan.Outputs[0]
	d := o.Detect
	if o.Kind != KindDetect || d == nil || d.Detector != "zscore" || !slices.Equal(d.Fields, []string{"speed_kmh", "flow_vph"}) ||
		d.Alpha != 0.2 || d.Threshold != 2.5 || d.WarmUp != 5 {
		t.Fatalf("output %+v detect %+v", o, d)
	}
	if !slices.Equal(o.Columns, DetectColumns("zscore")) || len(o.Columns) != 4 {
		t.Errorf("columns %v", o.Columns)
	}
	if d := plan.Outputs[1].Detect; d.Alpha != DefaultAlpha || d.Threshold != DefaultThreshold || d.WarmUp != DefaultWarmUp {
		t.Errorf("defaults %+v", d)
	}
	if s := o.Describe(); s != "speed_anomalies: detect zscore by [sensor_id]" {
		t.Errorf("describe %q", s)
	}
}

func TestOperatorErrors(t *testing.T) {
	const city = "name: c\nsource: {topic: city, schema: city, key: sensor_id, time: {field: ts}}\nderive: {label: 'string(zone)'}\noutputs:\n"
	for _, c := range []struct {
		name, yaml string
		want       wantErr
	}{
		{"window key on events", city + "  - name: o\n    window: {tumbling: 1m}\n    events: {fields: [zone]}\n",
			wantErr{6, 5, "outputs[0].window", "window belongs to window outputs, not to a events output", "remove window"}},
		{"aggregates on detect", city + "  - name: o\n    aggregates: {n: count()}\n    detect: {detector: zscore, fields: [speed_kmh]}\n",
			wantErr{6, 5, "outputs[0].aggregates", "aggregates belongs to window outputs, not to a detect output", "remove aggregates"}},
		{"both kinds", city + "  - name: o\n    events: {fields: [zone]}\n    detect: {detector: zscore, fields: [speed_kmh]}\n",
			wantErr{7, 5, "outputs[0].detect", "the output has both events and detect", "an output of its own"}},
		{"detect field not numeric", city + "  - name: o\n    detect: {detector: zscore, fields: [speed_kmh, zone]}\n",
			wantErr{6, 52, "outputs[0].detect.fields[1]", "zone is a string (the city schema), not a number", "the detector needs a number"}},
		{"detect derived string", city + "  - name: o\n    detect: {detector: zscore, fields: [label]}\n",
			wantErr{6, 41, "outputs[0].detect.fields[0]", "label is a string (the pipeline's derive), not a number", "double(label)"}},
		{"detect field after a refused one", city + "  - name: o\n    detect: {detector: zscore, fields: [speed_kmh, speed_kmh, zone]}\n",
			wantErr{6, 63, "outputs[0].detect.fields[2]", "zone is a string (the city schema), not a number", ""}},
		{"alpha out of range", city + "  - name: o\n    detect: {detector: zscore, fields: [speed_kmh], alpha: 1.5}\n",
			wantErr{6, 60, "outputs[0].detect.alpha", "alpha 1.5 is out of range", "(0, 1]"}},
		{"alpha not a number", city + "  - name: o\n    detect: {detector: zscore, fields: [speed_kmh], alpha: fast}\n",
			wantErr{6, 60, "outputs[0].detect.alpha", `expected a number, found "fast"`, "0.1"}},
		{"warm-up fraction", city + "  - name: o\n    detect: {detector: zscore, fields: [speed_kmh], warm_up: 2.5}\n",
			wantErr{6, 62, "outputs[0].detect.warm_up", "warm_up must be a whole number", "warm_up: 10"}},
		{"threshold zero", city + "  - name: o\n    detect: {detector: zscore, fields: [speed_kmh], threshold: 0}\n",
			wantErr{6, 64, "outputs[0].detect.threshold", "threshold must be greater than 0", "3 is usual"}},
		{"unknown detector", city + "  - name: o\n    detect: {detector: zscor, fields: [speed_kmh]}\n",
			wantErr{6, 24, "outputs[0].detect.detector", `unknown detector "zscor"`, "did you mean zscore?"}},
		{"no detector", city + "  - name: o\n    detect: {fields: [speed_kmh]}\n",
			wantErr{6, 13, "outputs[0].detect.detector", "names no detector", "detector: zscore"}},
		{"detect field is group field", city + "  - name: o\n    group_by: [speed_kmh]\n    detect: {detector: zscore, fields: [speed_kmh]}\n",
			wantErr{7, 41, "outputs[0].detect.fields[0]", "speed_kmh is a group_by field", "group_by says whose"}},
		{"group field collides with a detect column", city + "  - name: o\n    group_by: [z]\n    detect: {detector: zscore, fields: [speed_kmh]}\n",
			wantErr{6, 5, "outputs[0].group_by", "z is a column of every detect row", "rename"}},
		{"events type unknown", "name: t\nsource: {topic: in, key: id, time: {field: ts}}\noutputs:\n  - name: o\n    events: {fields: [service, latency_ms]}\n",
			wantErr{5, 23, "outputs[0].events.fields.service", "the type of service is not known", "fields: {service: TYPE}, TYPE one of string"}},
		{"events type conflicts with schema", city + "  - name: o\n    events: {fields: {zone: float64}}\n",
			wantErr{6, 29, "outputs[0].events.fields.zone", "zone is a string (the city schema), not a float64", "zone: string"}},
		{"events unknown type", "name: t\nsource: {topic: in, key: id, time: {field: ts}}\noutputs:\n  - name: o\n    events: {fields: {n: integer}}\n",
			wantErr{5, 26, "outputs[0].events.fields.n", `unknown type "integer"`, ""}},
		{"events time field", city + "  - name: o\n    events: {fields: [ts, zone]}\n",
			wantErr{6, 23, "outputs[0].events.fields.ts", "ts is the event-time field", "as time"}},
		{"events group field projected", city + "  - name: o\n    group_by: [zone]\n    events: {fields: [zone]}\n",
			wantErr{7, 23, "outputs[0].events.fields.zone", "zone is already a group_by field", "remove it"}},
		{"events reserved field", "name: t\nsource: {topic: in, key: id, time: {field: ts}}\noutputs:\n  - name: o\n    events: {fields: {time: string}}\n",
			wantErr{5, 23, "outputs[0].events.fields.time", "time is a column every row has already", "rename"}},
		{"events where not boolean", city + "  - name: o\n    events: {where: 'speed_kmh + 1.0', fields: [zone]}\n",
			wantErr{6, 21, "outputs[0].events.where", "where must be a boolean expression, this one is a double", ""}},
		{"events no fields", city + "  - name: o\n    events: {where: 'speed_kmh > 1.0'}\n",
			wantErr{6, 13, "outputs[0].events.fields", "the events output has no fields", "fields: {service: string"}},
		{"events derive out of order", city + "  - name: o\n    events:\n      derive: {a: 'b + 1.0', b: 'speed_kmh * 2.0'}\n      fields: [a, b]\n",
			wantErr{7, 19, "outputs[0].events.derive.a", "uses b, which is derived later", "move b above a"}},
		{"events unknown key", city + "  - name: o\n    events: {filter: 'true', fields: [zone]}\n",
			wantErr{6, 14, "outputs[0].events.filter", `unknown key "filter"`, ""}},
		{"window output still needs a window", city + "  - name: o\n    aggregates: {n: count()}\n",
			wantErr{5, 5, "outputs[0].window", "the output has no window", ""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(c.yaml))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("got %v, want errors", err)
			}
			for _, e := range es {
				if e.Path == c.want.path && strings.Contains(e.Msg, c.want.msg) && strings.Contains(e.Hint, c.want.hint) {
					if e.Line != c.want.line || e.Col != c.want.col {
						t.Errorf("%s at %d:%d, want %d:%d", e.Msg, e.Line, e.Col, c.want.line, c.want.col)
					}
					return
				}
			}
			t.Errorf("no error at %s with %q (hint %q) in:\n%v", c.want.path, c.want.msg, c.want.hint, err)
		})
	}
}
