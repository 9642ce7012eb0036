package pipeline

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const joinHead = `name: pay
source:
  topic: transactions
  key: tx_id
  time: {field: at}
outputs:
`

func TestParseJoin(t *testing.T) {
	src := joinHead + `  - name: enriched
    group_by: [tx_id]
    fields: {amount: decimal, merchant_id: string, at: timestamp}
    join:
      table: merchants
      key: merchant_id
      fields:
        merchant_name: string
        mcc: int
        risk: double
        blocked: bool
        since: timestamp
      missing: null
    topic: pay-enriched
    sinks: []
    live: false
  - name: windowed
    window: {tumbling: 1m}
    aggregates: {n: count()}
`
	plan, err := Parse("pay.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	o := plan.Outputs[0]
	want := Output{
		Name: "enriched", Kind: KindJoin, GroupBy: []string{"tx_id"}, Topic: "pay-enriched", Sinks: []string{}, Live: false,
		Columns: []Column{{"amount", TypeDecimal}, {"merchant_id", TypeString}, {"at", TypeTimestamp},
			{"merchant_name", TypeString}, {"mcc", TypeInt64}, {"risk", TypeFloat64}, {"blocked", TypeBool}, {"since", TypeTimestamp}},
		Join: &Join{
			Table: "merchants", Key: "merchant_id",
			Fields:      []Column{{"amount", TypeDecimal}, {"merchant_id", TypeString}, {"at", TypeTimestamp}},
			TableFields: []Column{{"merchant_name", TypeString}, {"mcc", TypeInt64}, {"risk", TypeFloat64}, {"blocked", TypeBool}, {"since", TypeTimestamp}},
			Missing:     MissingNull,
		},
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got\n%+v\n%+v\nwant\n%+v\n%+v", o, *o.Join, want, *want.Join)
	}
	if plan.Outputs[1].Kind != KindWindow {
		t.Errorf("second output kind %v, want a window", plan.Outputs[1].Kind)
	}
	if got := o.Describe(); got != "enriched: join merchants on merchant_id by [tx_id]" {
		t.Errorf("Describe: %q", got)
	}
}

func TestParseJoinDefaults(t *testing.T) {
	for _, missing := range []string{"", "\n      missing: drop", "\n      missing: \"null\""} {
		src := joinHead + "  - name: e\n    join:\n      table: m\n      key: k\n      fields: {name: string}" + missing + "\n"
		plan, err := Parse("pay.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", missing, err)
		}
		o := plan.Outputs[0]
		wantMissing := MissingDrop
		if strings.Contains(missing, "null") {
			wantMissing = MissingNull
		}
		if o.Topic != "pay.e" || !reflect.DeepEqual(o.Sinks, []string{"sqlite"}) || !o.Live || o.Join.Missing != wantMissing ||
			len(o.Join.Fields) != 0 || !reflect.DeepEqual(o.Columns, []Column{{"name", TypeString}}) {
			t.Errorf("%q: %+v %+v", missing, o, *o.Join)
		}
	}
}

func TestParseJoinInvalid(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       wantErr
	}{
		{"no table", "  - name: e\n    join: {key: k, fields: {a: string}}\n",
			wantErr{8, 11, "outputs[0].join.table", "the join has no table", "table: merchants"}},
		{"no key", "  - name: e\n    join: {table: m, fields: {a: string}}\n",
			wantErr{8, 11, "outputs[0].join.key", "the join has no key", "key: merchant_id"}},
		{"no fields", "  - name: e\n    join: {table: m, key: k}\n",
			wantErr{8, 11, "outputs[0].join.fields", "the join has no fields", "name: string"}},
		{"empty fields", "  - name: e\n    join: {table: m, key: k, fields: {}}\n",
			wantErr{8, 38, "outputs[0].join.fields", "the join adds no table fields", "risk: double"}},
		{"unknown type", "  - name: e\n    join: {table: m, key: k, fields: {a: float}}\n",
			wantErr{8, 42, "outputs[0].join.fields.a", `unknown type "float"`, "use string, int, double"}},
		{"unknown missing", "  - name: e\n    join: {table: m, key: k, fields: {a: string}, missing: skip}\n",
			wantErr{8, 60, "outputs[0].join.missing", `unknown missing "skip"`, "drop"}},
		{"window in a join", "  - name: e\n    window: {tumbling: 1m}\n    join: {table: m, key: k, fields: {a: string}}\n",
			wantErr{8, 5, "outputs[0].window", `unknown key "window"`, "allowed keys: name, group_by, fields, join"}},
		{"column twice", "  - name: e\n    fields: {a: string}\n    join: {table: m, key: k, fields: {a: string}}\n",
			wantErr{9, 39, "outputs[0].join.fields.a", "a is already an event field of the output", "its own name"}},
		{"group_by field as a column", "  - name: e\n    group_by: [a]\n    join: {table: m, key: k, fields: {a: string}}\n",
			wantErr{9, 39, "outputs[0].join.fields.a", "a is already a group_by field of the output", "its own name"}},
		{"reserved column", "  - name: e\n    fields: {key: string}\n    join: {table: m, key: k, fields: {a: string}}\n",
			wantErr{8, 14, "outputs[0].fields.key", "key is a reserved result field name", "reserved: output, key"}},
		{"internal table", "  - name: e\n    join: {table: x.changelog, key: k, fields: {a: string}}\n",
			wantErr{8, 19, "outputs[0].join.table", "looks like one of Pulse's internal topics", "compacted topic"}},
		{"table is the output topic", "  - name: e\n    join: {table: m, key: k, fields: {a: string}}\n    topic: m\n",
			wantErr{9, 5, "outputs[0].topic", "topic m is the output's table", "another topic"}},
		{"output topic is the source", "  - name: e\n    join: {table: m, key: k, fields: {a: string}}\n    topic: transactions\n",
			wantErr{9, 5, "outputs[0].topic", "topic transactions is a source topic", "another topic"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(joinHead+tc.yaml))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v is not Errors", err)
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
}
