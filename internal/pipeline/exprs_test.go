package pipeline

import (
	"slices"
	"testing"
)

// TestComputedTypes checks the column type inferred for computed fields
// and the columns each one reads.
func TestComputedTypes(t *testing.T) {
	src := head + `outputs:
  - name: o
    group_by: [zone]
    window: {tumbling: 1m}
    aggregates: {errors: count(), total: sum(n), first_zone: first(zone)}
    computed:
      duration_s: 'window_end - window_start'
      error_ratio: 'errors / total'
      pct: 'error_ratio * 100'
      busy: 'errors > 10'
      label: 'zone + "/" + string(int(errors))'
      whole: 'int(errors) * 2'
      next_start: 'window_start + duration("1m")'
      same: 'string(first_zone) == zone'
    having: 'has(error_ratio) && error_ratio > 0.5 && duration_s >= 60'
`
	plan, err := Parse("ok.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	o := plan.Outputs[0]
	want := []struct {
		name   string
		typ    ColumnType
		fields []string
	}{
		{"duration_s", TypeFloat64, []string{"window_end", "window_start"}},
		{"error_ratio", TypeFloat64, []string{"errors", "total"}},
		{"pct", TypeFloat64, []string{"error_ratio"}},
		{"busy", TypeBool, []string{"errors"}},
		{"label", TypeString, []string{"errors", "zone"}},
		{"whole", TypeInt64, []string{"errors"}},
		{"next_start", TypeTimestamp, []string{"window_start"}},
		{"same", TypeBool, []string{"first_zone", "zone"}},
	}
	if len(o.Computed) != len(want) {
		t.Fatalf("%d computed fields, want %d", len(o.Computed), len(want))
	}
	for i, w := range want {
		c := o.Computed[i]
		if c.Name != w.name || c.Type != w.typ || !slices.Equal(c.Expr.Fields, w.fields) {
			t.Errorf("computed %d: %s %v %v, want %s %v %v", i, c.Name, c.Type, c.Expr.Fields, w.name, w.typ, w.fields)
		}
	}
	if o.Having == nil || !slices.Equal(o.Having.Fields, []string{"duration_s", "error_ratio"}) {
		t.Errorf("having %+v", o.Having)
	}
}

// TestResultScope checks the columns and their order, which the hints
// list.
func TestResultScope(t *testing.T) {
	plan, err := Parse("ok.yaml", []byte(head+havingOut+"    computed: {r: 'errors / total'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	sc := resultScope(&plan.Outputs[0], nil)
	if want := []string{"zone", "window_start", "window_end", "errors", "total", "r"}; !slices.Equal(sc.columns, want) {
		t.Errorf("columns %v, want %v", sc.columns, want)
	}
}
