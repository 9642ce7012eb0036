package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/telemetry"
)

const joinPipeline = `name: pay
source:
  topic: transactions
  key: tx_id
  time: {field: at}
outputs:
  - name: enriched
    group_by: [tx_id]
    fields: {amount: double, merchant_id: string}
    join:
      table: merchants
      key: merchant_id
      fields: {name: string, risk: double}
      missing: MISSING
`

type joinFixture struct {
	plan *pipeline.Plan
	dec  *Decoder
	tbl  *Table
	op   *joinOp
	m    *telemetry.Metrics
}

func newJoinFixture(t testing.TB, yaml, missing string) *joinFixture {
	t.Helper()
	plan := testPlan(t, strings.Replace(yaml, "MISSING", missing, 1))
	dec := NewDecoder(plan)
	o := &plan.Outputs[0]
	tbl := NewTable(TableConfig{Topic: o.Join.Table, Fields: o.Join.TableFields})
	m := telemetry.New()
	return &joinFixture{plan: plan, dec: dec, tbl: tbl, op: newJoinOp(plan, dec, tbl, m), m: m}
}

// add decodes and joins one event.
func (f *joinFixture) add(t testing.TB, js string) {
	t.Helper()
	var r Record
	if err := f.dec.Decode([]byte(js), &r); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	if late := f.op.Add(0, &r, 0); late != 0 {
		t.Fatalf("%s: a join found an event late", js)
	}
}

func (f *joinFixture) set(t testing.TB, key, value string) {
	t.Helper()
	if value == "" {
		f.tbl.Apply([]TableUpdate{{Key: key, Delete: true}})
		return
	}
	row, err := f.tbl.ParseRow([]byte(value))
	if err != nil {
		t.Fatal(err)
	}
	f.tbl.Apply([]TableUpdate{{Key: key, Row: row}})
}

func (f *joinFixture) unmatched(action string) float64 {
	return testutil.ToFloat64(f.m.JoinUnmatched.WithLabelValues(f.plan.Name, f.plan.Outputs[0].Name, action))
}

// rowJSON writes a join result as the result topic holds it, less the
// output name.
func rowJSON(r *Result) string {
	return fmt.Sprintf("%s@%d %s", strings.Join(r.Key, ","), r.Start, AppendValuesJSON(nil, r))
}

// TestJoinSeesTableAsProcessed: an event sees the row its key has when it
// is processed: an update applied before it is seen, an update applied
// after it does not change what it wrote.
func TestJoinSeesTableAsProcessed(t *testing.T) {
	f := newJoinFixture(t, joinPipeline, "drop")
	f.set(t, "m1", `{"name":"Books","risk":0.5}`)
	f.add(t, `{"tx_id":"t1","at":1000,"amount":12.5,"merchant_id":"m1"}`)
	f.set(t, "m1", `{"name":"Books & Co","risk":0.75}`) // after t1, before t2
	f.add(t, `{"tx_id":"t2","at":900,"amount":3,"merchant_id":"m1"}`)
	f.add(t, `{"tx_id":"t3","at":1100,"amount":1,"merchant_id":"m9"}`) // no row: dropped
	f.set(t, "m1", "")                                                 // a tombstone
	f.add(t, `{"tx_id":"t4","at":1200,"amount":2,"merchant_id":"m1"}`) // no row any more: dropped
	var got []string
	for _, r := range f.op.Advance(0, nil, 0) {
		if !r.Final || r.Start != r.End || r.Output != "enriched" || !reflect.DeepEqual(r.GroupBy, []string{"tx_id"}) {
			t.Errorf("result %+v", r)
		}
		got = append(got, rowJSON(&r))
	}
	want := []string{
		`t1@1000 {"amount":12.5,"merchant_id":"m1","name":"Books","risk":0.5}`,
		`t2@900 {"amount":3,"merchant_id":"m1","name":"Books & Co","risk":0.75}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(f.op.Advance(0, nil, 0)) != 0 {
		t.Error("Advance returned the results a second time")
	}
	if f.unmatched("dropped") != 0 {
		t.Error("unmatched events counted before the changes were written")
	}
	appendChanges(f.op, nil)
	if d, n := f.unmatched("dropped"), f.unmatched("nulled"); d != 2 || n != 0 {
		t.Errorf("unmatched: dropped %v nulled %v, want 2 and 0", d, n)
	}
}

// TestJoinMissingNull writes events without a row with null table fields,
// and reads keys of any type as text.
func TestJoinMissingNull(t *testing.T) {
	f := newJoinFixture(t, joinPipeline, `"null"`)
	f.set(t, "17", `{"name":"Seventeen"}`)
	f.add(t, `{"tx_id":"t1","at":1000,"amount":"12","merchant_id":17}`) // a number key; a string amount is no double
	f.add(t, `{"tx_id":"t2","at":1001,"amount":4}`)                     // no key field: no row
	f.add(t, `{"tx_id":"t3","at":1002,"amount":5,"merchant_id":"18"}`)
	var got []string
	for _, r := range f.op.Advance(0, nil, 0) {
		got = append(got, rowJSON(&r))
	}
	want := []string{
		`t1@1000 {"merchant_id":"17","name":"Seventeen"}`,
		`t2@1001 {"amount":4}`,
		`t3@1002 {"amount":5,"merchant_id":"18"}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	appendChanges(f.op, nil)
	if d, n := f.unmatched("dropped"), f.unmatched("nulled"); d != 0 || n != 2 {
		t.Errorf("unmatched: dropped %v nulled %v, want 0 and 2", d, n)
	}
}

// TestJoinWatermarkAndState: a join follows the markers' watermark and
// keeps no state; a changelog record is refused with the reason.
func TestJoinWatermarkAndState(t *testing.T) {
	f := newJoinFixture(t, joinPipeline, "drop")
	op := f.op
	op.Assign(0, 0)
	op.Assign(1, 0)
	if op.Watermark() != NoWatermark {
		t.Fatalf("watermark %d before any marker", op.Watermark())
	}
	op.Mark(0, 10_000, true, false)
	op.Mark(1, 8_000, true, false)
	if want := int64(8_000) - f.plan.Time.MaxOutOfOrderness.Milliseconds(); op.Watermark() != want {
		t.Errorf("watermark %d, want %d", op.Watermark(), want)
	}
	f.set(t, "m1", `{"name":"Books"}`)
	f.add(t, `{"tx_id":"t1","at":1,"merchant_id":"m1"}`)
	if op.Groups() != 0 || op.OpenWindows() != 0 || len(op.Partials(nil)) != 0 ||
		len(appendChanges(op, nil)) != 0 || len(appendSnapshot(op, nil)) != 0 {
		t.Error("a join holds state")
	}
	if err := op.RestoreChange([]byte("k"), []byte("v"), 0); err == nil || !strings.Contains(err.Error(), "rename the output") {
		t.Errorf("RestoreChange: %v", err)
	}
}

// TestJoinMatchesModel is the randomized oracle: a random sequence of
// table updates (in batches of any size, tombstones among them) and
// events, applied in one order to the table and the operator, with
// Advance called at random points, writes exactly what a model that keeps
// the latest value of each key computes for each event at its position.
func TestJoinMatchesModel(t *testing.T) {
	for seed := range 2 * oracleSeeds() {
		missing := []string{"drop", `"null"`}[seed%2]
		t.Run(fmt.Sprintf("seed %d missing %s", seed, missing), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			f := newJoinFixture(t, joinPipeline, missing)
			model := map[string]TableRow{}
			var want, got []string
			var batch []TableUpdate
			keys := []int{8, 60, 400}[seed%3] // 400 keys: the table merges its changes now and then
			dropped, nulled := 0, 0
			for i := range 20_000 {
				k := strconv.Itoa(rng.IntN(keys))
				if rng.IntN(3) == 0 { // a table update, applied with the batch
					u := TableUpdate{Key: k, Delete: rng.IntN(4) == 0}
					if !u.Delete {
						u.Row = TableRow{event.StringValue("n" + strconv.Itoa(i)), event.NumberValue(float64(rng.IntN(100)) / 4)}
						if rng.IntN(5) == 0 {
							u.Row[1] = event.Value{}
						}
					}
					batch = append(batch, u)
					continue
				}
				// An event: the pending updates come first.
				f.tbl.Apply(batch)
				for _, u := range batch {
					if u.Delete {
						delete(model, u.Key)
					} else {
						model[u.Key] = u.Row
					}
				}
				batch = nil
				key := `"` + k + `"`
				if rng.IntN(2) == 0 {
					key = k // a number
				}
				ev := fmt.Sprintf(`{"tx_id":"t%d","at":%d,"amount":%d,"merchant_id":%s}`, i, 1000+i, i%7, key)
				f.add(t, ev)
				r := Result{Key: []string{"t" + strconv.Itoa(i)}, Start: int64(1000 + i), Names: f.op.names,
					Values: []event.Value{event.NumberValue(float64(i % 7)), event.StringValue(k), {}, {}}}
				if row, ok := model[k]; ok {
					copy(r.Values[2:], row)
				} else if missing == "drop" {
					dropped++
					continue
				} else {
					nulled++
				}
				want = append(want, rowJSON(&r))
				if rng.IntN(100) == 0 {
					for _, r := range f.op.Advance(0, nil, 0) {
						got = append(got, rowJSON(&r))
					}
				}
			}
			for _, r := range f.op.Advance(0, nil, 0) {
				got = append(got, rowJSON(&r))
			}
			if len(got) != len(want) {
				t.Fatalf("%d results, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("result %d: got %s, want %s", i, got[i], want[i])
				}
			}
			appendChanges(f.op, nil)
			if d, n := f.unmatched("dropped"), f.unmatched("nulled"); d != float64(dropped) || n != float64(nulled) {
				t.Errorf("unmatched: dropped %v nulled %v, want %d and %d", d, n, dropped, nulled)
			}
		})
	}
}

// A join case is a hand-written scenario: table updates and events in
// order, and the rows expected, worked out by hand from the rule that an
// event sees the latest value of its key written before it.
type joinCase struct {
	Description   string     `json:"description"`
	Pipeline      string     `json:"pipeline"`
	Steps         []joinStep `json:"steps"`
	Expect        []string   `json:"expect"` // "key@event time ms {values}", in order
	ExpectDropped int        `json:"expect_dropped"`
	ExpectNulled  int        `json:"expect_nulled"`
}

type joinStep struct {
	Comment string `json:"comment"`
	// Table is a table record's key; Value its value (null: a tombstone).
	Table *string         `json:"table"`
	Value json.RawMessage `json:"value"`
	Event json.RawMessage `json:"event"`
}

func TestJoinSemantics(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "join", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no join cases: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			var c joinCase
			if err := dec.Decode(&c); err != nil {
				t.Fatal(err)
			}
			t.Log(c.Description)
			f := newJoinFixture(t, c.Pipeline, "")
			for i, s := range c.Steps {
				switch {
				case s.Table != nil && (len(s.Value) == 0 || string(s.Value) == "null"):
					f.set(t, *s.Table, "")
				case s.Table != nil:
					f.set(t, *s.Table, string(s.Value))
				case s.Event != nil:
					f.add(t, string(s.Event))
				default:
					t.Fatalf("step %d: neither a table record nor an event", i+1)
				}
			}
			var got []string
			for _, r := range f.op.Advance(0, nil, 0) {
				got = append(got, rowJSON(&r))
			}
			if !reflect.DeepEqual(got, c.Expect) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.Expect, "\n"))
			}
			appendChanges(f.op, nil)
			if d, n := f.unmatched("dropped"), f.unmatched("nulled"); d != float64(c.ExpectDropped) || n != float64(c.ExpectNulled) {
				t.Errorf("unmatched: dropped %v nulled %v, want %d and %d", d, n, c.ExpectDropped, c.ExpectNulled)
			}
		})
	}
}

// BenchmarkJoinAdd measures the join's hot path: the table lookup and the
// row build, per decoded event, with the results taken every 4096 events
// as a commit would.
func BenchmarkJoinAdd(b *testing.B) {
	f := newJoinFixture(b, joinPipeline, "drop")
	var load []TableUpdate
	for i := range 10_000 {
		load = append(load, TableUpdate{Key: "m" + strconv.Itoa(i), Row: merchant("merchant "+strconv.Itoa(i), float64(i%100)/100)})
	}
	f.tbl.Apply(load)
	recs := make([]Record, 1024)
	for i := range recs {
		js := fmt.Sprintf(`{"tx_id":"t%d","at":%d,"amount":%d.5,"merchant_id":"m%d"}`, i, 1000+i, i, (i*7919)%10_000)
		if err := f.dec.Decode([]byte(js), &recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	var dst []Result
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		f.op.Add(0, &recs[n%len(recs)], 0)
		if n++; n%4096 == 0 {
			dst = f.op.Advance(0, dst[:0], 0)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// TestJoinDocExample runs the join example of docs/pipelines.md: its
// transaction, joined with the row its kcat command loads, must give the
// result the page shows.
func TestJoinDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/pipelines.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	s = s[strings.Index(s, "## join: enrich events from a table"):]
	block := func(lang, prefix string) string {
		t.Helper()
		for rest := s; ; {
			i := strings.Index(rest, "```"+lang+"\n")
			if i < 0 {
				t.Fatalf("no %s block starting %q in the join section", lang, prefix)
			}
			rest = rest[i+len(lang)+4:]
			body := rest[:strings.Index(rest, "```")]
			if strings.HasPrefix(body, prefix) {
				return body
			}
		}
	}
	f := newJoinFixture(t, block("yaml", "name: payments"), "")
	var key, value string
	for _, line := range strings.Split(block("sh", "# load"), "\n") {
		if strings.HasPrefix(line, "echo '") && strings.Contains(line, "{") {
			key, value, _ = strings.Cut(strings.TrimSuffix(strings.TrimPrefix(line, "echo '"), "' \\"), "|")
			break
		}
	}
	f.set(t, key, value)
	events := block("json", `{"tx_id"`)
	f.add(t, strings.TrimSpace(events))
	rs := f.op.Advance(0, nil, 0)
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1", len(rs))
	}
	// The page shows the record the result topic carries.
	rec := SchemaOf(&f.plan.Outputs[0]).AppendValue(nil, &rs[0])
	var got, want any
	if err := json.Unmarshal(rec, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(block("json", `{"tx_id":"tx-1001","time"`)), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("result\n%s\nthe page shows\n%s", rec, block("json", `{"tx_id":"tx-1001","time"`))
	}
}
