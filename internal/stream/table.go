package stream

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// Table is a reference table read whole from a Kafka topic, as Kafka
// Streams reads a global table: the latest value of each record key (the
// key as text) is its row, and a tombstone (a record without a value)
// deletes it. Values are JSON objects; the fields the table was asked for
// are parsed once, when a record is read, into typed values.
//
// Run reads the topic from its start up to the end offsets present when it
// starts (read_committed: committed records only) before Ready is closed,
// then follows the topic live on its own goroutine and client. Lookups are
// safe from any goroutine and take no lock: they read an immutable
// snapshot that the reader swaps atomically after each batch of records.
//
// Memory is bounded by the topic's distinct keys: one row per live key
// (its key, and one event.Value per field), plus up to about sqrt(2n)
// recent changes kept beside the n rows until they are merged in; a merge
// holds the old and the new map for a moment (twice the rows). The topic's
// history is read but not kept. After a restart the whole topic is read
// again: compaction on the broker bounds what that costs.
type Table struct {
	cfg TableConfig

	cur      atomic.Pointer[tableSnap]
	ready    chan struct{}
	readyOne sync.Once
	lastErr  atomic.Pointer[string]

	rows, lag prometheus.Gauge // nil without metrics
	invalid   prometheus.Counter
}

// TableConfig configures a Table.
type TableConfig struct {
	// Topic is the table's topic.
	Topic string
	// Fields are the value fields a row holds, in order, with their types.
	Fields []pipeline.Column
	// Opts are the client options (seed brokers and the like).
	Opts    []kgo.Opt
	Logger  *slog.Logger
	Metrics *telemetry.Metrics
}

// TableRow is one row of a table: its fields in TableConfig.Fields order.
// It is shared and must not be modified.
type TableRow []event.Value

// TableUpdate is one change of a table: Key gets Row, or is deleted.
type TableUpdate struct {
	Key    string
	Row    TableRow
	Delete bool
}

// tableSnap is an immutable state of a table: its rows in base, with the
// changes since the last merge in delta (a nil row: deleted).
type tableSnap struct {
	base  map[string]TableRow
	delta map[string]TableRow
	rows  int
}

func (s *tableSnap) get(key string) (TableRow, bool) {
	if r, ok := s.delta[key]; ok {
		return r, r != nil
	}
	r, ok := s.base[key]
	return r, ok
}

// NewTable returns the table of cfg, empty and not ready; Run reads it.
func NewTable(cfg TableConfig) *Table {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Table{cfg: cfg, ready: make(chan struct{})}
	t.cur.Store(&tableSnap{base: map[string]TableRow{}})
	if m := cfg.Metrics; m != nil {
		t.rows = m.TableRows.WithLabelValues(cfg.Topic)
		t.lag = m.TableLag.WithLabelValues(cfg.Topic)
		t.invalid = m.TableInvalid.WithLabelValues(cfg.Topic)
	}
	return t
}

// Topic returns the table's topic.
func (t *Table) Topic() string { return t.cfg.Topic }

// Lookup returns the current row of key.
func (t *Table) Lookup(key string) (TableRow, bool) { return t.cur.Load().get(key) }

// LookupBytes is Lookup by a key in bytes, without a copy.
func (t *Table) LookupBytes(key []byte) (TableRow, bool) {
	s := t.cur.Load()
	if r, ok := s.delta[string(key)]; ok {
		return r, r != nil
	}
	r, ok := s.base[string(key)]
	return r, ok
}

// Len returns how many rows the table holds.
func (t *Table) Len() int { return t.cur.Load().rows }

// Ready is closed once the table holds the topic up to the end offsets
// present when Run started.
func (t *Table) Ready() <-chan struct{} { return t.ready }

// Wait waits until the table is ready or ctx ends.
func (t *Table) Wait(ctx context.Context) error {
	select {
	case <-t.ready:
		return nil
	case <-ctx.Done():
		msg := "not loaded yet"
		if e := t.lastErr.Load(); e != nil {
			msg = *e
		}
		return fmt.Errorf("table %s: %s: %w", t.cfg.Topic, msg, ctx.Err())
	}
}

// Apply applies a batch of updates in order and publishes the result at
// once: a lookup sees the table before the batch or after it. The reader
// calls it; tests may too. Apply is not safe for concurrent use.
func (t *Table) Apply(batch []TableUpdate) {
	if len(batch) == 0 {
		return
	}
	old := t.cur.Load()
	s := &tableSnap{base: old.base, rows: old.rows, delta: make(map[string]TableRow, len(old.delta)+len(batch))}
	for k, r := range old.delta {
		s.delta[k] = r
	}
	for _, u := range batch {
		_, had := s.get(u.Key)
		row := u.Row
		if u.Delete {
			row = nil
		} else if row == nil {
			row = TableRow{}
		}
		s.delta[u.Key] = row
		switch {
		case had && row == nil:
			s.rows--
		case !had && row != nil:
			s.rows++
		}
	}
	if len(s.delta) > mergeAt(len(s.base)) {
		s.base, s.delta = s.merged(), nil
	}
	t.cur.Store(s)
	t.setRows(s.rows)
}

// mergeAt is how many changes a snapshot keeps beside n rows before they
// are merged: about sqrt(2n), which balances copying the changes at every
// batch against copying the rows at every merge.
func mergeAt(n int) int { return max(64, int(math.Sqrt(2*float64(n)))) }

// merged returns base with delta applied, as a new map.
func (s *tableSnap) merged() map[string]TableRow {
	m := make(map[string]TableRow, s.rows)
	for k, r := range s.base {
		if _, changed := s.delta[k]; !changed {
			m[k] = r
		}
	}
	for k, r := range s.delta {
		if r != nil {
			m[k] = r
		}
	}
	return m
}

func (t *Table) setRows(n int) {
	if t.rows != nil {
		t.rows.Set(float64(n))
	}
}

// joinTables returns a table for each join output of cfg's plan, by output
// name. Each stage worker reads its own tables.
func joinTables(cfg *StageConfig) map[string]*Table {
	var out map[string]*Table
	for _, o := range cfg.Plan.Outputs {
		if o.Kind != pipeline.KindJoin || o.Join == nil {
			continue
		}
		if out == nil {
			out = map[string]*Table{}
		}
		out[o.Name] = NewTable(TableConfig{Topic: o.Join.Table, Fields: o.Join.TableFields,
			Opts: cfg.Cluster.Opts, Logger: cfg.Logger, Metrics: cfg.Metrics})
	}
	return out
}

// runTables starts the tables' readers, each on its own goroutine until
// ctx ends, and waits until every table is loaded: a join sees its table
// whole from its first event. While it waits, /readyz says which table it
// waits for. It returns a function that waits for the readers to end, and
// false when ctx ended first.
func runTables(ctx context.Context, tables map[string]*Table, prog *progress) (wait func(), ok bool) {
	var wg sync.WaitGroup
	for _, t := range tables {
		wg.Go(func() { _ = t.Run(ctx) }) // Run logs its failures and retries until ctx ends
	}
	for _, t := range tables {
		select {
		case <-t.Ready():
			continue
		default:
		}
		if !t.await(ctx, prog) {
			return wg.Wait, false
		}
	}
	return wg.Wait, true
}

// await waits until t is ready, telling prog what it waits for and the
// reader's last error; it returns false when ctx ended first.
func (t *Table) await(ctx context.Context, prog *progress) bool {
	defer prog.restore("")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		status := "loading table " + t.Topic()
		if e := t.lastErr.Load(); e != nil {
			status += " (last error: " + *e + ")"
		}
		prog.restore(status)
		select {
		case <-t.ready:
			return true
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}
