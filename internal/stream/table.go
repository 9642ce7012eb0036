package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/backoff"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/ratelog"
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
	cfg   TableConfig
	names map[string]int // field -> index in a row

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
	t := &Table{cfg: cfg, names: map[string]int{}, ready: make(chan struct{})}
	for i, f := range cfg.Fields {
		t.names[f.Name] = i
	}
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

// Run reads the table until ctx ends, starting again (and reading the
// whole topic again, while lookups see the table as it was) after a
// failure, with a backoff.
func (t *Table) Run(ctx context.Context) error {
	warn := ratelog.New(t.cfg.Logger, 10*time.Second)
	retry := backoff.Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second}
	for {
		began := time.Now()
		err := t.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s := err.Error()
		t.lastErr.Store(&s)
		if time.Since(began) > time.Minute {
			retry.Reset()
		}
		warn.Error(s, "table reader failed; reading the table again", "table", t.cfg.Topic, "err", err)
		if !retry.Wait(ctx) {
			return nil
		}
	}
}

// session reads the whole topic into a new map, publishes it and closes
// Ready, then applies what follows in batches until ctx ends or reading
// fails.
func (t *Table) session(ctx context.Context) error {
	topic := t.cfg.Topic
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, t.cfg.Opts...),
		kgo.ClientID("pulse-table-"+topic),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// The last offsets before the end may be commit markers: the
		// load reads them to know it is done.
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return fmt.Errorf("table %s: client: %w", topic, err)
	}
	defer cl.Close()
	end, err := tableEnds(ctx, cl, topic)
	if err != nil {
		return err
	}
	r := &tableReader{t: t, next: map[int32]int64{}, hw: map[int32]int64{}}
	load := map[string]TableRow{}
	for len(end) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := fetchError(ctx, fetches, topic); err != nil {
			return err
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			r.seen(rec)
			if !rec.Attrs.IsControl() {
				if u, ok := r.parse(rec); ok {
					if u.Delete {
						delete(load, u.Key)
					} else {
						load[u.Key] = u.Row
					}
				}
			}
			if e, ok := end[rec.Partition]; ok && rec.Offset+1 >= e {
				delete(end, rec.Partition)
			}
		})
		r.lagFrom(fetches)
	}
	t.cur.Store(&tableSnap{base: load, rows: len(load)})
	t.setRows(len(load))
	t.lastErr.Store(nil)
	t.readyOne.Do(func() {
		t.cfg.Logger.Info("table loaded", "table", topic, "rows", len(load))
		close(t.ready)
	})
	var batch []TableUpdate
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fetchError(ctx, fetches, topic); err != nil {
			return err
		}
		batch = batch[:0]
		fetches.EachRecord(func(rec *kgo.Record) {
			r.seen(rec)
			if !rec.Attrs.IsControl() {
				if u, ok := r.parse(rec); ok {
					batch = append(batch, u)
				}
			}
		})
		t.Apply(batch)
		clear(batch) // the rows are the table's now
		r.lagFrom(fetches)
	}
}

// tableEnds returns, per partition of topic holding committed records, the
// offset the initial load reads up to.
func tableEnds(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("table %s: list end offsets (does the topic exist? create it, compacted, or write a row to it): %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("table %s: list start offsets: %w", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(topic, o.Partition); o.Offset > 0 && (!ok || o.Offset > s.Offset) {
			out[o.Partition] = o.Offset
		}
	})
	return out, nil
}

// fetchError returns the first error of fetches other than ctx ending.
func fetchError(ctx context.Context, fetches kgo.Fetches, topic string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ferr error
	fetches.EachError(func(tp string, p int32, err error) {
		if ferr == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			ferr = fmt.Errorf("table %s: read partition %d: %w", topic, p, err)
		}
	})
	return ferr
}

// tableReader turns a table topic's records into updates, on the reading
// goroutine.
type tableReader struct {
	t    *Table
	p    fastjson.Parser
	next map[int32]int64 // next offset, per partition
	hw   map[int32]int64 // last stable offset, per partition
}

func (r *tableReader) seen(rec *kgo.Record) { r.next[rec.Partition] = rec.Offset + 1 }

// lagFrom sets the lag gauge: the records committed in the partitions
// after what was read.
func (r *tableReader) lagFrom(fetches kgo.Fetches) {
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		r.hw[p.Partition] = p.LastStableOffset
	})
	if r.t.lag == nil {
		return
	}
	var lag int64
	for p, hw := range r.hw {
		lag += max(0, hw-r.next[p])
	}
	r.t.lag.Set(float64(lag))
}

// parse turns a record into an update; a record that is not a valid row
// is skipped (the key keeps its row), logged and counted.
func (r *tableReader) parse(rec *kgo.Record) (TableUpdate, bool) {
	key := string(rec.Key)
	if len(rec.Value) == 0 {
		return TableUpdate{Key: key, Delete: true}, true
	}
	row, err := r.t.parseRow(&r.p, rec.Value)
	if err != nil {
		r.t.cfg.Logger.Warn("table record skipped: its key keeps its previous row", "table", r.t.cfg.Topic,
			"source", sourceOf(rec), "key", key, "err", err)
		if r.t.invalid != nil {
			r.t.invalid.Add(1)
		}
		return TableUpdate{}, false
	}
	return TableUpdate{Key: key, Row: row}, true
}

// ParseRow parses a table value (a JSON object) into a row of the table's
// fields; a field that is missing or null is null.
func (t *Table) ParseRow(value []byte) (TableRow, error) {
	var p fastjson.Parser
	return t.parseRow(&p, value)
}

func (t *Table) parseRow(p *fastjson.Parser, value []byte) (TableRow, error) {
	if err := event.CheckUTF8(value); err != nil {
		return nil, err
	}
	v, err := p.ParseBytes(value)
	if err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	obj, err := v.Object()
	if err != nil {
		return nil, fmt.Errorf("a table value must be a JSON object, got %s", v.Type())
	}
	row := make(TableRow, len(t.cfg.Fields))
	for i, f := range t.cfg.Fields {
		x := obj.Get(f.Name)
		if x == nil || x.Type() == fastjson.TypeNull {
			continue
		}
		if row[i], err = jsonColumn(x, f.Type); err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
	}
	return row, nil
}

// jsonColumn reads a JSON value as a column of type ct.
func jsonColumn(x *fastjson.Value, ct pipeline.ColumnType) (event.Value, error) {
	typ := x.Type()
	switch ct {
	case pipeline.TypeString:
		switch typ {
		case fastjson.TypeString:
			b, _ := x.StringBytes()
			return event.StringValue(string(b)), nil
		case fastjson.TypeNumber, fastjson.TypeTrue, fastjson.TypeFalse:
			return event.StringValue(x.String()), nil
		}
	case pipeline.TypeInt64:
		if f, err := x.Float64(); err == nil && typ == fastjson.TypeNumber && f == math.Trunc(f) && !math.IsInf(f, 0) {
			return event.NumberValue(f), nil
		}
		return event.Value{}, fmt.Errorf("expected a whole number, found %s", shortJSON(x))
	case pipeline.TypeFloat64, pipeline.TypeDecimal:
		if typ == fastjson.TypeNumber {
			if f, err := x.Float64(); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return event.NumberValue(f), nil
			}
		}
		if b, err := x.StringBytes(); err == nil && ct == pipeline.TypeDecimal {
			if f, err := strconv.ParseFloat(string(b), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return event.NumberValue(f), nil
			}
		}
		return event.Value{}, fmt.Errorf("expected a number, found %s", shortJSON(x))
	case pipeline.TypeBool:
		switch typ {
		case fastjson.TypeTrue:
			return event.BoolValue(true), nil
		case fastjson.TypeFalse:
			return event.BoolValue(false), nil
		}
		return event.Value{}, fmt.Errorf("expected true or false, found %s", shortJSON(x))
	case pipeline.TypeTimestamp:
		ms, err := event.ReadTime(x, "auto")
		if err != nil {
			return event.Value{}, err
		}
		return event.NumberValue(float64(ms)), nil
	}
	return event.Value{}, fmt.Errorf("cannot read %s as this column's type", shortJSON(x))
}

// shortJSON returns x as JSON, cut to a readable length.
func shortJSON(x *fastjson.Value) string {
	s := x.String()
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
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
