package stream

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/pipeline"
)

// A DAG case (testdata/dag/*.json) runs a two-level pipeline graph
// without Kafka: the upstream engine's results go through the record
// codec (as on the result topic) and the shuffle stage's source decoding
// into the second level's operators, each fed the records of one
// upstream output, its watermark the highest row time it read. The
// expectations are worked out by hand in the description.
type dagCase struct {
	Description string `json:"description"`
	Upstream    string `json:"upstream"`
	// Downstream maps an upstream output to the pipeline that reads it
	// (one detect output).
	Downstream map[string]string `json:"downstream"`
	// Events are the upstream's events, added in order from partition 0;
	// ts in epoch seconds.
	Events []map[string]any `json:"events"`
	// ExpectRecords are the kinds and times (s) of the records each
	// downstream pipeline reads, in order: "update@60".
	ExpectRecords map[string][]string `json:"expect_records"`
	// ExpectRows are the detector's rows, in order.
	ExpectRows map[string][]dagRow `json:"expect_rows"`
}

type dagRow struct {
	Time  int64    `json:"time"` // s
	Value float64  `json:"value"`
	Mean  float64  `json:"mean"`
	SD    float64  `json:"stddev"`
	Z     *float64 `json:"z"` // null: no z (a flat series)
}

// dagLevel is a second-level pipeline of a case.
type dagLevel struct {
	plan  *pipeline.Plan
	dec   *Decoder
	op    Operator
	max   int64
	rows  []dagRow
	kinds []string
}

func TestDAGCases(t *testing.T) {
	files, err := filepath.Glob("testdata/dag/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no DAG cases: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var c dagCase
			if err := json.Unmarshal(data, &c); err != nil {
				t.Fatal(err)
			}
			runDAGCase(t, &c)
		})
	}
}

func runDAGCase(t *testing.T, c *dagCase) {
	up := testPlan(t, c.Upstream)
	plans := []*pipeline.Plan{up}
	levels := map[string]*dagLevel{}
	for out, src := range c.Downstream {
		l := &dagLevel{plan: testPlan(t, src), max: NoWatermark}
		levels[out] = l
		plans = append(plans, l.plan)
	}
	if err := pipeline.Link(plans); err != nil {
		t.Fatal(err)
	}
	for _, l := range levels {
		l.dec = NewDecoder(l.plan)
		l.op = newRowOperator(l.plan, l.dec)
		l.op.Assign(0, 0)
	}
	dec := NewDecoder(up)
	eng := NewEngine(up, dec)
	eng.Assign(0, 0)
	schemas := map[string]*Schema{}
	for i := range up.Outputs {
		schemas[up.Outputs[i].Name] = SchemaOf(&up.Outputs[i])
	}
	var r Record
	for _, ev := range c.Events {
		js, _ := json.Marshal(ev)
		if err := dec.Decode(js, &r); err != nil {
			t.Fatal(err)
		}
		if late := eng.Add(0, &r, 0); late != 0 {
			t.Fatalf("event %s is late", js)
		}
		for _, res := range eng.Advance(0, nil, 0) {
			l := levels[res.Output]
			if l == nil {
				continue
			}
			key, value, headers := schemas[res.Output].Record(&res)
			var dr Record
			kind, err := decodeSource(l.dec, &l.plan.Source, &kgo.Record{Key: key, Value: value, Headers: headers}, &dr)
			if err != nil {
				t.Fatalf("%s record %s %s: %v", res.Output, key, value, err)
			}
			dr.Kind = kind
			l.kinds = append(l.kinds, fmt.Sprintf("%s@%d", kind, dr.TS/1000))
			if late := l.op.Add(0, &dr, 0); late != 0 {
				t.Fatalf("%s: the %s of the row at %d is late downstream", res.Output, kind, dr.TS/1000)
			}
			l.max = max(l.max, dr.TS)
			l.op.Mark(0, l.max, true, false)
			for _, s := range l.op.Advance(0, nil, 0) {
				v := s.Values // value, mean, stddev, z (the field is in the key)
				row := dagRow{Time: s.Start / 1000, Value: v[0].Num, Mean: v[1].Num, SD: v[2].Num}
				if !v[3].IsNull() {
					row.Z = &v[3].Num
				}
				l.rows = append(l.rows, row)
			}
		}
	}
	for out, l := range levels {
		if !reflect.DeepEqual(l.kinds, c.ExpectRecords[out]) {
			t.Errorf("%s: records %v, want %v", out, l.kinds, c.ExpectRecords[out])
		}
		want := c.ExpectRows[out]
		if !slices.EqualFunc(l.rows, want, sameDAGRow) {
			t.Errorf("%s: rows\n%v\nwant\n%v", out, fmtRows(l.rows), fmtRows(want))
		}
	}
}

func sameDAGRow(a, b dagRow) bool {
	if a.Time != b.Time || !closeTo(a.Value, b.Value) || !closeTo(a.Mean, b.Mean) || !closeTo(a.SD, b.SD) || (a.Z == nil) != (b.Z == nil) {
		return false
	}
	return a.Z == nil || closeTo(*a.Z, *b.Z)
}

func fmtRows(rs []dagRow) []string {
	var out []string
	for _, r := range rs {
		z := "null"
		if r.Z != nil {
			z = fmt.Sprint(*r.Z)
		}
		out = append(out, fmt.Sprintf("%d value=%v mean=%v sd=%v z=%s", r.Time, r.Value, r.Mean, r.SD, z))
	}
	return out
}
