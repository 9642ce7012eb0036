package pipeline

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/common/types"

	"github.com/pulsehq/pulse/internal/aggregate"
)

const minimal = `name: t
source:
  topic: in
  key: id
  time: {field: ts}
outputs:
  - name: o
    window: {tumbling: 1m}
    aggregates: {n: count()}
`

// everything uses every feature of the format.
const everything = `name: shop
description: Sessions and page views of a web shop.
source:
  topics: [clicks, clicks_mobile]
  format: json
  key: user_id
  time:
    field: at
    format: epoch_ms
event_time:
  max_out_of_orderness: 2s
  idle_timeout: 1m
  allowed_lateness: 10s
where: 'kind != "bot" && dwell_s >= 0.0'
derive:
  dwell_s: 'dwell_ms / 1000.0'
  long_view: 'dwell_s > 30.0'
  section: 'path.split("/")[1]'
outputs:
  - name: sessions
    group_by: [user_id]
    window:
      session: {gap: 30m}
    aggregates:
      views: count()
      with_dwell: count(dwell_s)
      dwell_total: sum(dwell_s)
      dwell_avg: avg(dwell_s)
      dwell_min: min(dwell_s)
      dwell_max: max(dwell_s)
      first_path: first(path)
      last_path: last(path)
      dwell_stddev: stddev(dwell_s)
      dwell_p50: p50(dwell_s)
      dwell_p90: p90(dwell_s)
      dwell_p95: p95(dwell_s)
      dwell_p99: p99(dwell_s)
      sections: count_distinct(section)
    emit: {partials: 1s}
    topic: shop-sessions
    sinks: []
    live: false
  - name: traffic_5m
    window:
      hopping: {size: 5m, slide: 1m}
    aggregates:
      views: count()
      users: count_distinct(user_id)
  - name: by_section
    group_by: [section, long_view]
    window: {tumbling: 1h30m}
    aggregates: {views: count()}
`

func TestParseEverything(t *testing.T) {
	p, err := Parse("shop.yaml", []byte(everything))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "shop" || p.Description != "Sessions and page views of a web shop." || p.File != "shop.yaml" {
		t.Errorf("name %q description %q file %q", p.Name, p.Description, p.File)
	}
	wantSrc := Source{Topics: []string{"clicks", "clicks_mobile"}, Format: "json", KeyField: "user_id", TimeField: "at", TimeFormat: "epoch_ms"}
	if !reflect.DeepEqual(p.Source, wantSrc) {
		t.Errorf("source %+v", p.Source)
	}
	if want := (EventTime{2 * time.Second, time.Minute, 10 * time.Second}); p.Time != want {
		t.Errorf("event time %+v", p.Time)
	}
	if p.Where == nil || !reflect.DeepEqual(p.Where.Fields, []string{"dwell_s", "kind"}) {
		t.Errorf("where %+v", p.Where)
	}
	var derived []string
	for _, d := range p.Derive {
		derived = append(derived, d.Name)
	}
	if !reflect.DeepEqual(derived, []string{"dwell_s", "long_view", "section"}) {
		t.Errorf("derived %v", derived)
	}
	if len(p.Outputs) != 3 {
		t.Fatalf("%d outputs", len(p.Outputs))
	}
	s, h, b := p.Outputs[0], p.Outputs[1], p.Outputs[2]
	if s.Window != (Window{Kind: Session, Gap: 30 * time.Minute}) || s.Partials != time.Second ||
		s.Topic != "shop-sessions" || len(s.Sinks) != 0 || s.Live {
		t.Errorf("sessions %+v", s)
	}
	var funcs []string
	for _, a := range s.Aggregates {
		funcs = append(funcs, a.Func.Name())
	}
	if !reflect.DeepEqual(funcs, append([]string{"count"}, aggregate.Names()...)) {
		t.Errorf("functions %v, want every one", funcs)
	}
	if s.Aggregates[0].Field != "" || s.Aggregates[1].Field != "dwell_s" || s.Aggregates[13].Field != "section" {
		t.Errorf("fields %+v", s.Aggregates)
	}
	if h.Window != (Window{Kind: Hopping, Size: 5 * time.Minute, Slide: time.Minute}) || h.GroupBy != nil ||
		h.Topic != "shop.traffic_5m" || !reflect.DeepEqual(h.Sinks, []string{"sqlite"}) || !h.Live || h.Partials != 0 {
		t.Errorf("traffic_5m %+v", h)
	}
	if b.Window.Size != 90*time.Minute || !reflect.DeepEqual(b.GroupBy, []string{"section", "long_view"}) {
		t.Errorf("by_section %+v", b)
	}
}

func TestCELEval(t *testing.T) {
	p, err := Parse("shop.yaml", []byte(everything))
	if err != nil {
		t.Fatal(err)
	}
	act := map[string]any{"kind": "human", "dwell_ms": 45000.0, "path": "/shoes/red"}
	want := map[string]any{"dwell_s": 45.0, "long_view": true, "section": "shoes"}
	for _, d := range p.Derive {
		v, _, err := d.Expr.Prog.Eval(act)
		if err != nil {
			t.Fatalf("derive %s: %v", d.Name, err)
		}
		if v.Value() != want[d.Name] {
			t.Errorf("derive %s = %v, want %v", d.Name, v, want[d.Name])
		}
		act[d.Name] = v.Value()
	}
	for kind, keep := range map[string]bool{"human": true, "bot": false} {
		act["kind"] = kind
		v, _, err := p.Where.Prog.Eval(act)
		if err != nil || v != types.Bool(keep) {
			t.Errorf("where with kind %s = %v, %v; want %v", kind, v, err, keep)
		}
	}
}

func TestExpressionFields(t *testing.T) {
	for src, want := range map[string][]string{
		`speed_kmh / 3.6`:                      {"speed_kmh"},
		`[1.0, 2.0].exists(x, x > limit)`:      {"limit"},
		`tags.all(t, t.startsWith(prefix))`:    {"prefix", "tags"},
		`math.abs(delta) > 1.0`:                {"delta"},
		`type(v) == int || type(v) == double`:  {"v"},
		`{"a": x}[key] + y.z`:                  {"key", "x", "y"},
		`has(meta.source) ? meta.source : "?"`: {"meta"},
		`"constant"`:                           {},
	} {
		p := &parser{file: "x.yaml"}
		prog, _ := p.compile(scalar(src), "derive.x")
		if len(p.errs) > 0 {
			t.Errorf("%s: %v", src, p.errs)
			continue
		}
		if !reflect.DeepEqual(prog.Fields, want) {
			t.Errorf("%s: fields %v, want %v", src, prog.Fields, want)
		}
	}
}

func TestSourceSchema(t *testing.T) {
	src := "name: s\nsource: {topic: t, schema: town, key: k, time: {field: ts}}\noutputs:\n  - name: o\n    window: {tumbling: 1m}\n    aggregates: {n: count()}\n"
	_, err := Parse("s.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), `unknown schema "town"`) || !strings.Contains(err.Error(), "s.yaml:2:") {
		t.Fatalf("unknown schema: %v", err)
	}
}
