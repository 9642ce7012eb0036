package stream

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/telemetry"
)

var merchantFields = []pipeline.Column{{Name: "name", Type: pipeline.TypeString}, {Name: "risk", Type: pipeline.TypeFloat64}}

func merchant(name string, risk float64) TableRow {
	return TableRow{event.StringValue(name), event.NumberValue(risk)}
}

func tableRecord(key, value string) *kgo.Record {
	r := &kgo.Record{Topic: "merchants", Key: []byte(key)}
	if value != "" {
		r.Value = []byte(value)
	}
	return r
}

// rowsOf returns every row of keys that t holds.
func tableRowsOf(t *Table, keys ...string) map[string]TableRow {
	out := map[string]TableRow{}
	for _, k := range keys {
		if r, ok := t.Lookup(k); ok {
			out[k] = r
		}
	}
	return out
}

// startTable runs a table of the merchants topic until the returned stop
// is called, and waits until it is loaded.
func startTable(t *testing.T, opts []kgo.Opt, m *telemetry.Metrics) (*Table, func()) {
	t.Helper()
	tbl := NewTable(TableConfig{Topic: "merchants", Fields: merchantFields, Opts: opts, Metrics: m})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := tbl.Run(ctx); err != nil {
			t.Errorf("table: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := tbl.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	return tbl, func() { cancel(); wg.Wait() }
}

// TestTableFromTopic loads a table topic written by plain and
// transactional producers (an aborted transaction is not read), follows
// it live (an update, a tombstone), and after a restart reads it whole
// again.
func TestTableFromTopic(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic("merchants"), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := bus.EnsureTopicsWith(ctx, cl, 3, map[string]string{"cleanup.policy": "compact"}, "merchants"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx,
		tableRecord("m1", `{"name":"Old Books","risk":0.5}`),
		tableRecord("m2", `{"name":"Cafe","risk":0.1,"extra":[1,2]}`),
		tableRecord("m3", `{"name":"Gone","risk":1}`),
		tableRecord("m1", `{"name":"Books","risk":0.25}`),  // the latest value wins
		tableRecord("m3", ""),                              // a tombstone deletes m3
		tableRecord("m2", `{"name":"Cafe","risk":"high"}`), // not a double: skipped, m2 keeps its row
		tableRecord("m4", `[1]`),                           // not an object: skipped
		tableRecord("7", `{"name":"Seven"}`),               // risk missing: null
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txn := func(commit bool, recs ...*kgo.Record) {
		tc, err := kgo.NewClient(append(opts, kgo.TransactionalID("table-writer"), kgo.DefaultProduceTopic("merchants"))...)
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		if err := tc.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := tc.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := tc.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	txn(false, tableRecord("m5", `{"name":"Aborted","risk":9}`))
	txn(true, tableRecord("m6", `{"name":"Committed","risk":0.75}`))

	m := telemetry.New()
	tbl, stop := startTable(t, opts, m)
	keys := []string{"m1", "m2", "m3", "m4", "m5", "m6", "7"}
	want := map[string]TableRow{
		"m1": merchant("Books", 0.25), "m2": merchant("Cafe", 0.1), "m6": merchant("Committed", 0.75),
		"7": {event.StringValue("Seven"), {}},
	}
	// Ready means loaded: every row is there at once.
	if got := tableRowsOf(tbl, keys...); !reflect.DeepEqual(got, want) || tbl.Len() != len(want) {
		t.Fatalf("loaded %d rows %v, want %v", tbl.Len(), got, want)
	}
	if got := testutil.ToFloat64(m.TableInvalid.WithLabelValues("merchants")); got != 2 {
		t.Errorf("%v invalid records counted, want 2", got)
	}
	if got := testutil.ToFloat64(m.TableRows.WithLabelValues("merchants")); got != 4 {
		t.Errorf("rows gauge %v, want 4", got)
	}

	// Live: an update and a tombstone.
	if err := cl.ProduceSync(ctx, tableRecord("m2", `{"name":"Cafe Nero","risk":0.2}`), tableRecord("m1", "")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	want["m2"] = merchant("Cafe Nero", 0.2)
	delete(want, "m1")
	checkfor.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if got := tableRowsOf(tbl, keys...); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("rows %v, want %v", got, want)
		}
		return nil
	})
	checkfor.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if lag := testutil.ToFloat64(m.TableLag.WithLabelValues("merchants")); lag != 0 {
			return fmt.Errorf("lag %v, want 0", lag)
		}
		return nil
	})
	stop()

	// A new reader (a restart) reads the topic whole again.
	again, stop2 := startTable(t, opts, nil)
	defer stop2()
	if got := tableRowsOf(again, keys...); !reflect.DeepEqual(got, want) || again.Len() != len(want) {
		t.Fatalf("after a restart: %d rows %v, want %v", again.Len(), got, want)
	}
}

// TestTableEmptyTopic: a table whose topic holds nothing is ready, empty.
func TestTableEmptyTopic(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := bus.EnsureTopics(context.Background(), cl, 2, "merchants"); err != nil {
		t.Fatal(err)
	}
	tbl, stop := startTable(t, opts, nil)
	defer stop()
	if tbl.Len() != 0 {
		t.Fatalf("%d rows, want 0", tbl.Len())
	}
	if err := cl.ProduceSync(context.Background(), tableRecord("m1", `{"name":"Books","risk":0.25}`)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	checkfor.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if r, ok := tbl.Lookup("m1"); !ok || !reflect.DeepEqual(r, merchant("Books", 0.25)) {
			return fmt.Errorf("m1: %v %v", r, ok)
		}
		return nil
	})
}

// TestTableApply applies random batches of updates and deletes, across
// many merges of the changes into the rows, and compares the table with a
// map after each batch.
func TestTableApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	tbl := NewTable(TableConfig{Topic: "t", Fields: merchantFields})
	ref := map[string]TableRow{}
	keys := 3000
	for range 2000 {
		batch := make([]TableUpdate, 1+rng.IntN(40))
		for i := range batch {
			k := strconv.Itoa(rng.IntN(keys))
			if rng.IntN(4) == 0 {
				batch[i] = TableUpdate{Key: k, Delete: true}
				delete(ref, k)
				continue
			}
			batch[i] = TableUpdate{Key: k, Row: merchant(k, rng.Float64())}
			ref[k] = batch[i].Row
		}
		tbl.Apply(batch)
		if tbl.Len() != len(ref) {
			t.Fatalf("%d rows, want %d", tbl.Len(), len(ref))
		}
	}
	got := map[string]TableRow{}
	for k := range keys {
		key := strconv.Itoa(k)
		r, ok := tbl.Lookup(key)
		rb, okb := tbl.LookupBytes([]byte(key))
		if ok != okb || !reflect.DeepEqual(r, rb) {
			t.Fatalf("%s: Lookup %v %v, LookupBytes %v %v", key, r, ok, rb, okb)
		}
		if ok {
			got[key] = r
		}
	}
	if !maps.EqualFunc(got, ref, func(a, b TableRow) bool { return reflect.DeepEqual(a, b) }) {
		t.Fatalf("table differs from the reference: %d rows vs %d", len(got), len(ref))
	}
	if s := tbl.cur.Load(); len(s.delta) > mergeAt(len(s.base)) {
		t.Errorf("%d changes kept beside %d rows, more than %d", len(s.delta), len(s.base), mergeAt(len(s.base)))
	}
}

// TestTableParseRow reads each column type from JSON.
func TestTableParseRow(t *testing.T) {
	tbl := NewTable(TableConfig{Topic: "t", Fields: []pipeline.Column{
		{Name: "s", Type: pipeline.TypeString}, {Name: "i", Type: pipeline.TypeInt64}, {Name: "d", Type: pipeline.TypeFloat64},
		{Name: "b", Type: pipeline.TypeBool}, {Name: "ts", Type: pipeline.TypeTimestamp}, {Name: "dec", Type: pipeline.TypeDecimal},
	}})
	row, err := tbl.ParseRow([]byte(`{"s":12,"i":3,"d":1.5,"b":false,"ts":"2026-01-02T03:04:05.678Z","dec":"10.25","other":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := TableRow{event.StringValue("12"), event.NumberValue(3), event.NumberValue(1.5), event.BoolValue(false),
		event.NumberValue(float64(time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC).UnixMilli())), event.NumberValue(10.25)}
	if !reflect.DeepEqual(row, want) {
		t.Errorf("row %v, want %v", row, want)
	}
	for _, bad := range []string{`{"i":3.5}`, `{"d":"x"}`, `{"b":1}`, `{"ts":"yesterday"}`, `{"dec":"ten"}`, `not json`, `"a string"`} {
		if _, err := tbl.ParseRow([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	row, err = tbl.ParseRow([]byte(`{"s":null}`))
	if err != nil || !reflect.DeepEqual(row, make(TableRow, 6)) {
		t.Errorf("nulls: %v %v", row, err)
	}
}

// BenchmarkTableLookup compares lookups in the table's atomically swapped
// snapshot with a map behind a sync.RWMutex, from every core at once,
// read-only and with one update per writeEvery lookups (one writer at a
// time, as the table's reader goroutine).
func BenchmarkTableLookup(b *testing.B) {
	const n = 10_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "m" + strconv.Itoa(i)
	}
	for _, writeEvery := range []int{0, 1000} {
		name := "reads"
		if writeEvery > 0 {
			name = "update-every-" + strconv.Itoa(writeEvery)
		}
		b.Run("snapshot/"+name, func(b *testing.B) {
			tbl := NewTable(TableConfig{Topic: "t", Fields: merchantFields})
			var load []TableUpdate
			for _, k := range keys {
				load = append(load, TableUpdate{Key: k, Row: merchant(k, 1)})
			}
			tbl.Apply(load)
			var mu sync.Mutex
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, ok := tbl.Lookup(keys[i%n]); !ok {
						b.Fatal("missing")
					}
					if i++; writeEvery > 0 && i%writeEvery == 0 && mu.TryLock() {
						tbl.Apply([]TableUpdate{{Key: keys[(i*31)%n], Row: merchant("x", 2)}})
						mu.Unlock()
					}
				}
			})
		})
		b.Run("rwmutex/"+name, func(b *testing.B) {
			var mu sync.RWMutex
			m := map[string]TableRow{}
			for _, k := range keys {
				m[k] = merchant(k, 1)
			}
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					mu.RLock()
					_, ok := m[keys[i%n]]
					mu.RUnlock()
					if !ok {
						b.Fatal("missing")
					}
					if i++; writeEvery > 0 && i%writeEvery == 0 {
						mu.Lock()
						m[keys[(i*31)%n]] = merchant("x", 2)
						mu.Unlock()
					}
				}
			})
		})
	}
}

// TestTableKcat loads, replaces and deletes rows with the kcat commands of
// docs/pipelines.md: kcat, a client Pulse did not write, writes a table.
func TestTableKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kcat is required in CI: apt-get install kcat")
		}
		t.Skip("kcat not installed")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	opts := []kgo.Opt{kgo.SeedBrokers(addr)}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := bus.EnsureTopics(context.Background(), cl, 2, "merchants"); err != nil {
		t.Fatal(err)
	}
	run := func(input string, extra ...string) {
		t.Helper()
		cmd := exec.Command(kcat, append([]string{"-P", "-b", addr, "-t", "merchants", "-K", "|"}, extra...)...)
		cmd.Stdin = strings.NewReader(input)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat: %v\n%s", err, out)
		}
	}
	run("m-1|{\"name\":\"Books\",\"risk\":0.5}\nm-2|{\"name\":\"Cafe\",\"risk\":0.1}\n")
	tbl, stop := startTable(t, opts, nil)
	defer stop()
	want := map[string]TableRow{"m-1": merchant("Books", 0.5), "m-2": merchant("Cafe", 0.1)}
	if got := tableRowsOf(tbl, "m-1", "m-2"); !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded %v, want %v", got, want)
	}
	run("m-1|{\"name\":\"Books & Co\",\"risk\":0.25}\n")
	run("m-2|\n", "-Z")
	want = map[string]TableRow{"m-1": merchant("Books & Co", 0.25)}
	checkfor.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if got := tableRowsOf(tbl, "m-1", "m-2"); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("rows %v, want %v", got, want)
		}
		return nil
	})
}
