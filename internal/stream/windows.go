package stream

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/aggregate"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// Windower is a pipeline's second stage, one member of the consumer group
// "pulse.<pipeline>.windows": it reads its share of the repartition
// partitions, each a task with its own engine and state. A task's state is
// restored from its changelog partition before it processes a record.
// Final results, changelog records, late events and the consumed offsets
// commit in one transaction; when a transaction aborts (a rebalance, a
// failed write), every task is dropped and restored from its changelog,
// and the session rewinds to the committed offsets.
type Windower struct {
	cfg     StageConfig
	subs    []*pipeline.Plan // one plan per output
	dec     *Decoder         // the shuffle stage's slot layout
	layout  uint32
	outIdx  map[string]int // repartition topic → output
	repart  []string
	sources []int32 // every source partition id
	asg     assignment
	prog    *progress

	tables map[string]*Table // by output name: the tables of join outputs

	tasks      map[string]*task // by repartition topic:partition
	outParts   []int32          // partitions of each output topic
	lateN      int32
	fail       atomic.Pointer[error]
	rec        Record
	marks      []mark
	sampled    []int64
	folded     []int       // events folded per output in the transaction
	late       int         // late events in the transaction
	rejected   int         // dead letters in the transaction
	groupSlots [][]int     // per output, the slots of its group key
	need       [][]slotUse // per output, how it reads each slot
	strs       []interner  // per output, its interned strings
	key        []byte
	nrec       uint64
	lastLive   time.Time
	// unpublished is set when events were folded since the last live
	// refresh.
	unpublished bool
	livePer     time.Duration // shortest emit.partials of a live output
	// fired and commitStart are the transaction's final results and when
	// its commit began, for the metrics.
	fired       int
	commitStart time.Time
	// txnBegan is when the transaction began; advance writes finals
	// until budget after it and leaves the rest of a round of the
	// operator to the next transactions, so that no transaction runs
	// into the broker's transaction timeout (a minute's finals over a
	// million keys take several seconds). behind is set while a task has
	// some left.
	txnBegan  time.Time
	budget    time.Duration
	behind    bool
	lastPurge time.Time
	// truncWarned is set once deleting changelog records failed.
	truncWarned bool

	// exprs are, per output, its computed fields and having (nil: none).
	exprs []*resultExprs
}

type task struct {
	out     int
	part    int32
	op      Operator
	schema  *Schema  // the output's, for its result records
	pending []Result // a slice of fired results being written
	// behind is set when advance left results due for the next
	// transaction (see Windower.budget).
	behind  bool
	lastPub time.Time
	// sinceSnap counts the changelog records written since the last
	// snapshot; snapAt is the offset of the first record of the snapshot
	// in the transaction in progress (-1: none), set by snapPromise.
	sinceSnap   int
	snapAt      atomic.Int64
	snapPromise func(*kgo.Record, error)
	// gens holds, for an operator that cleans its changelog
	// (logCleaner), the offset of the first record of each generation
	// written since the oldest one a restore needs; truncated is the
	// offset the changelog partition was last truncated at.
	gens      []*genStart
	truncated int64
}

// genStart is where a changelog generation begins in its partition (-1
// until the broker acknowledged its first record).
type genStart struct {
	gen uint64
	at  atomic.Int64
}

// logCleaner is an Operator that bounds its changelog itself, by
// generations (changelog_gens.go), instead of by snapshots: the window
// engine. Each WriteChanges writes one generation.
type logCleaner interface {
	// LogGen returns the generation the next WriteChanges writes.
	LogGen() uint64
	// LogStart returns the oldest generation a restore needs: the
	// records before it may be deleted.
	LogStart() uint64
}

// A task's changelog holds at most about snapshotRatio times as many
// records as the task holds groups (and at least snapshotMin). The window
// engine cleans its changelog to that bound (changelog_gens.go); other
// operators write a snapshot of their whole state instead of their changes
// once they have written that many records since the last one. After the
// commit, the records a restore no longer needs are deleted.
const (
	snapshotRatio = 2
	snapshotMin   = 100
)

// NewWindower returns the window stage of cfg.Plan; Run starts it.
func NewWindower(cfg StageConfig) *Windower {
	cfg.defaults(time.Second)
	plan := cfg.Plan
	w := &Windower{cfg: cfg, outIdx: map[string]int{}, tasks: map[string]*task{}, dec: NewDecoder(plan), prog: newProgress(cfg.StallTimeout)}
	w.layout = layoutOf(w.dec)
	w.budget = cmp.Or(cfg.Cluster.TxnTimeout, defaultTxnTimeout) / 4
	w.tables = joinTables(&cfg)
	w.rec.Vals = make([]event.Value, w.dec.Slots())
	w.strs = make([]interner, len(plan.Outputs))
	w.folded = make([]int, len(plan.Outputs))
	for i := range plan.Outputs {
		sub := *plan
		sub.Outputs = plan.Outputs[i : i+1]
		w.subs = append(w.subs, &sub)
		t := RepartitionTopic(plan, plan.Outputs[i].Name)
		w.repart = append(w.repart, t)
		w.outIdx[t] = i
		slots := w.dec.groupSlots(&plan.Outputs[i])
		w.groupSlots = append(w.groupSlots, slots)
		w.exprs = append(w.exprs, newResultExprs(&plan.Outputs[i]))
		// Group keys are copied when a group is created, and most
		// aggregates keep no input value: those slots are read without
		// copying their strings.
		need := make([]slotUse, w.dec.Slots())
		for _, s := range slots {
			need[s] = viewSlot
		}
		for _, a := range plan.Outputs[i].Aggregates {
			if a.Field == "" {
				continue
			}
			use := viewSlot
			if aggregate.KeepsValues(a.Func) {
				use = keepSlot
			}
			need[w.dec.Slot(a.Field)] = max(need[w.dec.Slot(a.Field)], use)
		}
		for _, f := range plan.Outputs[i].InputFields() {
			need[w.dec.Slot(f)] = keepSlot // events and detect results keep their strings
		}
		w.need = append(w.need, need)
		if o := plan.Outputs[i]; o.Live && o.Partials > 0 && (w.livePer == 0 || o.Partials < w.livePer) {
			w.livePer = o.Partials
		}
	}
	return w
}

// Health returns nil while the stage runs and commits what it reads
// within StageConfig.StallTimeout, else why not (a restore in progress,
// the last error): for /readyz.
func (w *Windower) Health(ctx context.Context) error { return w.prog.health(ctx) }

// Run consumes until ctx ends, then commits the transaction in progress.
func (w *Windower) Run(ctx context.Context) error {
	wait, ok := runTables(ctx, w.tables, w.prog)
	defer wait()
	if !ok {
		return nil // ctx ended while a table loaded
	}
	l := &taskLoop{cfg: &w.cfg, name: "windows", topics: w.repart, asg: &w.asg, prog: w.prog,
		fail: &w.fail, abortNote: "tasks restore from their changelogs", st: w}
	return l.run(ctx)
}

// dropTasks forgets every task; each restores when its partition delivers.
func (w *Windower) dropTasks() {
	for k := range w.tasks {
		w.dropTask(k)
	}
}

func (w *Windower) dropTask(k string) {
	t := w.tasks[k]
	if t == nil {
		return
	}
	delete(w.tasks, k)
	w.closeOperator(t.op)
	if w.cfg.Board != nil {
		w.cfg.Board.Drop(w.cfg.Plan.Name, w.cfg.Plan.Outputs[t.out].Name, t.part)
	}
}

// syncAssignment drops the tasks of partitions this member lost.
func (w *Windower) syncAssignment(parts map[string][]int32) {
	keep := map[string]bool{}
	n := 0
	for topic, ps := range parts {
		for _, p := range ps {
			keep[tpKey(topic, p)] = true
			n++
		}
	}
	for k := range w.tasks {
		if !keep[k] {
			w.dropTask(k)
		}
	}
	w.cfg.Logger.Info("window partitions assigned", "pipeline", w.cfg.Plan.Name, "partitions", n)
}

func (w *Windower) produced(r *kgo.Record, err error) {
	if err != nil {
		err = writeFailed(r, err)
		w.fail.CompareAndSwap(nil, &err)
	}
}

// newTask returns the engine of one repartition partition, before restore.
func (w *Windower) newTask(out int, part int32) *task {
	t := &task{out: out, part: part, op: w.newOperator(out), schema: SchemaOf(&w.cfg.Plan.Outputs[out])}
	t.snapAt.Store(-1)
	t.snapPromise = func(r *kgo.Record, err error) {
		w.produced(r, err)
		if err == nil {
			t.snapAt.Store(r.Offset)
		}
	}
	return t
}

// newOperator returns an empty operator for a task of output out, by the
// output's kind.
func (w *Windower) newOperator(out int) Operator {
	if o := &w.cfg.Plan.Outputs[out]; o.Kind == pipeline.KindJoin {
		return newJoinOp(w.subs[out], w.dec, w.tables[o.Name], w.cfg.Metrics)
	}
	if w.subs[out].Outputs[0].Kind == pipeline.KindWindow {
		return taskEngine{w.newEngine(out)}
	}
	op := newRowOperator(w.subs[out], w.dec) // events, detect: op_events.go
	for _, pid := range w.sources {
		op.Assign(pid, 0)
	}
	return op
}

// newEngine returns an empty window engine for a task of output out.
func (w *Windower) newEngine(out int) *Engine {
	eng := w.engineFor(out) // in memory or on disk (state.go)
	eng.EnableChangelog()
	eng.UseMarkers()
	for _, pid := range w.sources {
		eng.Assign(pid, 0)
	}
	return eng
}

// restoreFresh creates and restores, together, the tasks of the partitions
// that deliver records for the first time.
func (w *Windower) restoreFresh(ctx context.Context, cl *kgo.Client, fetches kgo.Fetches) error {
	var fresh []*task
	fetches.EachPartition(func(ft kgo.FetchTopicPartition) {
		k := tpKey(ft.Topic, ft.Partition)
		if len(ft.Records) == 0 || w.tasks[k] != nil {
			return
		}
		t := w.newTask(w.outIdx[ft.Topic], ft.Partition)
		w.tasks[k] = t
		fresh = append(fresh, t)
	})
	if len(fresh) == 0 {
		return nil
	}
	if err := w.restore(ctx, cl, fresh); err != nil {
		for _, t := range fresh {
			delete(w.tasks, tpKey(w.repart[t.out], t.part))
			w.closeOperator(t.op)
		}
		return err
	}
	return nil
}

// process folds fetched records into their tasks, which restoreFresh has
// restored.
func (w *Windower) process(ctx context.Context, sess *kgo.GroupTransactSession, fetches kgo.Fetches) error {
	now := time.Now().UnixMilli()
	var err error
	fetches.EachPartition(func(ft kgo.FetchTopicPartition) {
		if len(ft.Records) == 0 || err != nil {
			return
		}
		t := w.tasks[tpKey(ft.Topic, ft.Partition)]
		for _, rec := range ft.Records {
			if len(rec.Value) == 0 || rec.Value[0] != recMarker {
				w.foldBatch(ctx, sess, t, rec, now)
				continue
			}
			if w.marks, err = parseMarker(w.marks[:0], rec.Value); err != nil {
				err = fmt.Errorf("%s at %s: %w", sourceOf(rec), ft.Topic, err)
				return
			}
			for _, m := range w.marks {
				t.op.Mark(m.pid, m.maxTS, m.seen, m.idle)
			}
			w.fired += w.advance(ctx, sess, t, now)
		}
	})
	return err
}

// publishCounts adds the events of the transaction that committed to the
// metrics and clears the counts; an aborted transaction's are cleared
// without, as its events are read and counted again.
func (w *Windower) publishCounts(committed bool) {
	if m := w.cfg.Metrics; m != nil && committed {
		name := w.cfg.Plan.Name
		for i, n := range w.folded {
			if n > 0 {
				m.WindowEvents.WithLabelValues(name, w.subs[i].Outputs[0].Name).Add(float64(n))
			}
		}
		if w.late > 0 {
			m.LateEvents.WithLabelValues(name).Add(float64(w.late))
		}
		if w.rejected > 0 {
			m.PipelineRejected.WithLabelValues(name).Add(float64(w.rejected))
		}
	}
	w.late, w.rejected = 0, 0
	clear(w.folded)
}

// foldBatch folds the events of one repartition batch into task t; late
// events go to the late topic, undecodable ones (only a pipeline file
// that changed between the stages, or another writer, gets there) to the
// dead-letter topic.
func (w *Windower) foldBatch(ctx context.Context, sess *kgo.GroupTransactSession, t *task, rec *kgo.Record, now int64) {
	name := w.cfg.Plan.Name
	reject := func(value []byte, origin string, err error) {
		w.rejected++
		w.side(ctx, sess, w.dlq(origin), nil, value, "pulse-error", fmt.Sprintf("window stage of %s: %v", name, err), origin, "")
	}
	events, berr := openBatch(rec.Value, w.layout)
	if errors.Is(berr, errRepartition) {
		reject(rec.Value, sourceOf(rec), berr)
		return
	}
	kinds := rec.Value[0] == recBatchKinds
	for len(events) > 0 {
		ev, rest, err := nextEvent(events)
		if err != nil {
			reject(events, sourceOf(rec), fmt.Errorf("%w (the rest of the batch)", err))
			return
		}
		events = rest
		src, vals, err := readSourceOf(ev, kinds)
		if err != nil {
			reject(ev, sourceOf(rec), err)
			continue
		}
		if err = berr; err == nil {
			err = readRecord(vals, &w.rec, &w.strs[t.out], w.need[t.out])
		}
		if err != nil {
			reject(ev, w.sourceName(src), err) // names the source record
			continue
		}
		w.rec.Kind, w.rec.Offset = src.kind, src.offset
		late := t.op.Add(src.pid, &w.rec, now)
		if err := rejectedBy(t.op); err != nil {
			reject(w.eventJSON(vals), w.sourceName(src), err) // an events or detect output refused it
			continue
		}
		if late != 0 {
			w.late++
			o := w.subs[t.out].Outputs[0]
			w.key = appendGroupText(w.key[:0], w.groupSlots[t.out], &w.rec)
			// Every field, not only this output's: the late record
			// shows the event as the pipeline read it.
			full := Record{Vals: make([]event.Value, len(w.rec.Vals))}
			if readRecord(vals, &full, nil, nil) != nil {
				full = w.rec
			}
			w.side(ctx, sess, pipeline.LateTopic(name), w.key, appendEventJSON(nil, &w.cfg.Plan.Source, w.dec.slots, &full),
				"pulse-late-reason", lateReason(&o, w.rec.TS, t.op.Watermark()), w.sourceName(src), o.Name)
			continue
		}
		w.folded[t.out]++
		w.unpublished = true
		if w.nrec++; w.nrec%64 == 0 && len(w.sampled) < 1<<16 {
			w.sampled = append(w.sampled, src.ingest)
			w.cfg.observeLatency("window_folded", time.Now().UnixMilli(), src.ingest)
		}
	}
}

func fmtMillis(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

// sourceOf names a record by topic, partition and offset.
func sourceOf(rec *kgo.Record) string {
	return rec.Topic + "/" + strconv.Itoa(int(rec.Partition)) + "/" + strconv.FormatInt(rec.Offset, 10)
}

// sourceName names an event's source record by topic, partition and
// offset, as sourceOf does for a record at hand.
func (w *Windower) sourceName(src srcEvent) string {
	topic := "?"
	if t := int(src.pid >> 16); t < len(w.cfg.Plan.Source.Topics) {
		topic = w.cfg.Plan.Source.Topics[t]
	}
	return topic + "/" + strconv.Itoa(int(src.pid&0xffff)) + "/" + strconv.FormatInt(src.offset, 10)
}

// dlq names the dead-letter topic for a record from origin (a
// sourceName or sourceOf): that of its source topic, or of the first.
func (w *Windower) dlq(origin string) string {
	topics := w.cfg.Plan.Source.Topics
	if i := strings.IndexByte(origin, '/'); i > 0 && slices.Contains(topics, origin[:i]) {
		return pipeline.DLQTopic(origin[:i])
	}
	return pipeline.DLQTopic(topics[0])
}

// side writes an event to a late or dead-letter topic with the reason and
// its origin in headers. The value is copied: it may point into a fetched
// batch.
func (w *Windower) side(ctx context.Context, sess *kgo.GroupTransactSession, topic string, key, value []byte, header, reason, source, output string) {
	// Records of a transaction are written even when shutdown began: the
	// last transaction commits what was processed.
	pctx := context.WithoutCancel(ctx)
	out := &kgo.Record{
		Topic: topic, Key: bytes.Clone(key), Value: bytes.Clone(value),
		Headers: []kgo.RecordHeader{
			{Key: header, Value: []byte(reason)},
			{Key: "pulse-pipeline", Value: []byte(w.cfg.Plan.Name)},
			{Key: "pulse-source", Value: []byte(source)},
		},
	}
	if key != nil {
		out.Partition = partitionFor(key, w.lateN) // late events, by group
	}
	if output != "" {
		out.Headers = append(out.Headers, kgo.RecordHeader{Key: "pulse-output", Value: []byte(output)})
	}
	sess.Produce(pctx, out, w.produced)
}

// flush fires what is due in every task and writes the final results and
// the state changes to the transaction; it returns how many results. The
// stage folds nothing meanwhile, so the tasks, each its own engine, are
// flushed in parallel: encoding 10,000 changed groups takes a core some
// 10 ms, a pause every event that arrives during it waits out.
func (w *Windower) flush(ctx context.Context, sess *kgo.GroupTransactSession) int {
	// Records of a transaction are written even when shutdown began: the
	// last transaction commits what was processed.
	pctx := context.WithoutCancel(ctx)
	now := time.Now().UnixMilli()
	tasks := slices.Collect(maps.Values(w.tasks))
	var fired atomic.Int64
	parallel(len(tasks), func(i int) { fired.Add(int64(w.flushTask(pctx, sess, tasks[i], now))) })
	open := 0
	wm := int64(NoWatermark)
	w.behind = false
	for _, t := range tasks {
		w.behind = w.behind || t.behind
		open += t.op.OpenWindows()
		if x := t.op.Watermark(); x != NoWatermark && (wm == NoWatermark || x < wm) {
			wm = x
		}
	}
	w.cfg.setGauge(gaugeOpen, float64(open), true)
	w.cfg.setGauge(gaugeWatermark, float64(wm)/1000, wm != NoWatermark)
	return int(fired.Load())
}

// flushTask fires what is due in task t and writes its final results and
// state changes; it returns how many results. Tasks may flush
// concurrently: each touches only its own engine.
func (w *Windower) flushTask(ctx context.Context, sess *kgo.GroupTransactSession, t *task, now int64) int {
	fired := w.advance(ctx, sess, t, now)
	topic := ChangelogTopic(w.cfg.Plan, w.cfg.Plan.Outputs[t.out].Name)
	// One timestamp for the flush's records: franz-go would read the
	// clock for each.
	stamp := time.UnixMilli(now)
	n := 0
	// emit writes a changelog record; the first one's promise is first
	// (where the truncation after the commit may cut), if not nil.
	emit := func(first func(*kgo.Record, error)) func(Change) {
		return func(c Change) {
			promise := w.produced
			if n == 0 && first != nil {
				promise = first
			}
			n++
			sess.Produce(ctx, &kgo.Record{Topic: topic, Partition: t.part, Key: c.Key, Value: c.Value, Timestamp: stamp}, promise)
		}
	}
	if c, ok := t.op.(logCleaner); ok {
		g := &genStart{gen: c.LogGen()}
		g.at.Store(-1)
		t.gens = append(t.gens, g)
		t.op.WriteChanges(emit(func(r *kgo.Record, err error) {
			w.produced(r, err)
			if err == nil {
				g.at.Store(r.Offset)
			}
		}))
		return fired
	}
	if t.sinceSnap >= max(snapshotRatio*t.op.Groups(), snapshotMin) {
		t.op.WriteSnapshot(emit(t.snapPromise))
		t.sinceSnap = 0
	} else {
		t.op.WriteChanges(emit(nil))
	}
	t.sinceSnap += n
	return fired
}

// advanceSlice is how many results a task fires at a time: each slice is
// encoded and written to the transaction before the next is fired, so a
// minute's finals over a million keys are never in memory at once.
const advanceSlice = 1024

// advance fires what is due in task t, a slice at a time, and writes the
// final results to the transaction; it returns how many.
func (w *Windower) advance(ctx context.Context, sess *kgo.GroupTransactSession, t *task, now int64) int {
	// Records of a transaction are written even when shutdown began: the
	// last transaction commits what was processed.
	ctx = context.WithoutCancel(ctx)
	o := &w.cfg.Plan.Outputs[t.out]
	stamp := time.UnixMilli(now)
	n := 0
	for {
		t.pending = t.op.Advance(now, t.pending[:0], advanceSlice)
		more := len(t.pending) >= advanceSlice
		t.pending = w.exprs[t.out].Finals(t.pending)
		for i := range t.pending {
			r := &t.pending[i]
			key, value, headers := t.schema.Record(r)
			// By the group fields alone (not a detect row's field or an
			// events row's event_id): a key's rows stay in order.
			group := r.Key[:min(len(o.GroupBy), len(r.Key))]
			sess.Produce(ctx, &kgo.Record{Topic: o.Topic, Partition: partitionFor([]byte(event.JoinKey(group)), w.outParts[t.out]),
				Key: key, Value: value, Headers: headers, Timestamp: stamp}, w.produced)
		}
		n += len(t.pending)
		// The produced records hold what they need: the results must not
		// stay reachable through the slice.
		clear(t.pending)
		t.pending = t.pending[:0]
		t.behind = more && time.Since(w.txnBegan) > w.budget
		if !more || t.behind {
			return n
		}
	}
}

// parallel calls fn(0) to fn(n-1) on up to GOMAXPROCS goroutines and
// returns when all returned.
func parallel(n int, fn func(int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// publishLive refreshes the live partial results of the tasks of every
// live output whose emit.partials interval has passed (or all, with
// force) and that someone watches.
func (w *Windower) publishLive(now time.Time, force bool) {
	b := w.cfg.Board
	if b == nil || w.livePer <= 0 || (!force && now.Sub(w.lastLive) < w.livePer) {
		return
	}
	w.lastLive = now
	w.unpublished = false
	name := w.cfg.Plan.Name
	for _, t := range w.tasks {
		o := w.cfg.Plan.Outputs[t.out]
		if !o.Live || o.Partials <= 0 || (!force && now.Sub(t.lastPub) < o.Partials) || !b.Watched(name, o.Name, now) {
			continue
		}
		t.lastPub = now
		b.Set(name, o.Name, t.part, Live{Watermark: t.op.Watermark(), Results: w.exprs[t.out].Partials(t.op.Partials(nil))})
	}
	if m := w.cfg.Metrics; m != nil {
		h := m.LiveLatency.WithLabelValues(name)
		for _, ts := range w.sampled {
			h.Observe(float64(time.Now().UnixMilli()-ts) / 1000)
		}
	}
	w.sampled = w.sampled[:0]
}
