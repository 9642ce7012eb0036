package pipeline

import (
	"errors"
	"strings"
	"testing"
)

// TestOutputArchive: archive: true on every output kind, false by default.
func TestOutputArchive(t *testing.T) {
	plan, err := Parse("t.yaml", []byte(`name: t
source: {topic: in, key: id, time: {field: ts}}
outputs:
  - name: win
    group_by: [zone]
    window: {tumbling: 1m}
    aggregates: {n: count()}
    archive: true
  - name: slow
    events: {where: 'latency_ms > 500.0', fields: {latency_ms: float64}}
    archive: true
  - name: odd
    detect: {detector: zscore, fields: [latency_ms]}
    archive: false
  - name: enriched
    group_by: [id]
    fields: {amount: decimal}
    join: {table: merchants, key: merchant_id, fields: {merchant_name: string}}
    archive: true
  - name: plain
    window: {tumbling: 1m}
    aggregates: {n: count()}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"win": true, "slow": true, "odd": false, "enriched": true, "plain": false}
	if len(plan.Outputs) != len(want) {
		t.Fatalf("%d outputs, want %d", len(plan.Outputs), len(want))
	}
	for _, o := range plan.Outputs {
		if o.Archive != want[o.Name] {
			t.Errorf("output %s: Archive = %v, want %v", o.Name, o.Archive, want[o.Name])
		}
	}
	if j := plan.Outputs[3]; j.Kind != KindJoin || j.Join.Table != "merchants" || len(j.Columns) != 2 {
		t.Errorf("join output with archive parsed as %+v", j)
	}
}

// TestOutputArchiveInvalid: a value that is not a boolean, and a result
// column named like a column the archive adds, are errors that say where
// and how to fix them.
func TestOutputArchiveInvalid(t *testing.T) {
	win := head + "outputs:\n  - name: o\n    group_by: [zone]\n    window: {tumbling: 1m}\n    aggregates: {n: count()}\n"
	join := head + "outputs:\n  - name: j\n    fields: {kind: string}\n    join: {table: m, key: merchant_id, fields: {name: string}}\n"
	for _, tc := range []struct {
		name, yaml string
		want       wantErr
	}{
		{"string", win + "    archive: yes\n", wantErr{11, 14, "outputs[0].archive", "expected true or false, found", "archive: true"}},
		{"quoted", win + "    archive: \"true\"\n", wantErr{11, 14, "outputs[0].archive", "expected true or false, found", "archive: false"}},
		{"number", win + "    archive: 1\n", wantErr{11, 14, "outputs[0].archive", "expected true or false, found", "archive: true"}},
		{"list", win + "    archive: [true]\n", wantErr{11, 14, "outputs[0].archive", "expected true or false, found a list", "archive: true"}},
		{"join not boolean", join + "    archive: on\n", wantErr{10, 14, "outputs[0].archive", "expected true or false, found", "archive: true"}},
		{"group field kind", strings.Replace(win, "[zone]", "[kind]", 1) + "    archive: true\n",
			wantErr{11, 5, "outputs[0].archive", "result column kind has the name of a column the archive adds", "derive: {kind_value: kind}"}},
		{"aggregate event_time", strings.Replace(win, "n: count()", "event_time: max(ts)", 1) + "    archive: true\n",
			wantErr{11, 5, "outputs[0].archive", "result column event_time has the name", "leave archive out"}},
		{"join field kind", join + "    archive: true\n",
			wantErr{10, 5, "outputs[0].archive", "result column kind has the name", "rename the column"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Parse("bad.yaml", []byte(tc.yaml))
			var errs Errors
			if plan != nil || !errors.As(err, &errs) {
				t.Fatalf("plan %v, error %v; want Errors", plan, err)
			}
			w := tc.want
			for _, e := range errs {
				if e.Line == w.line && e.Col == w.col && e.Path == w.path && strings.Contains(e.Msg, w.msg) && strings.Contains(e.Hint, w.hint) {
					return
				}
			}
			t.Errorf("no error %d:%d %s: %q (hint %q) among:\n%v", w.line, w.col, w.path, w.msg, w.hint, err)
		})
	}
	// Without archive, such a column is fine.
	if _, err := Parse("ok.yaml", []byte(strings.Replace(win, "[zone]", "[kind]", 1))); err != nil {
		t.Errorf("group_by [kind] without archive: %v", err)
	}
}
