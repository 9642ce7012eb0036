package stream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/backoff"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/ratelog"
)

// How a Table reads its topic: the whole topic up to the end offsets
// present at the start, then every record that follows, parsed into rows.

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
	r := &tableReader{t: t, next: map[int32]int64{}, hw: map[int32]int64{}, warn: ratelog.New(t.cfg.Logger, 10*time.Second)}
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
	warn *ratelog.Logger // skipped records: one line per cause and interval
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
		r.warn.Warn(err.Error(), "table record skipped: its key keeps its previous row", "table", r.t.cfg.Topic,
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
