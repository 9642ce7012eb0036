package stream

// Operator is the keyed, stateful logic of one output of a pipeline, run
// by the task loop for one repartition partition (a task). The runtime
// gives it events in offset order and watermark markers, asks it for the
// results due and for its state changes at every commit, and rebuilds it
// from its changelog after a restart or an aborted transaction. An
// operator is not safe for concurrent use; different tasks' operators run
// concurrently.
//
// The window engine (Engine) is one implementation; the events and detect
// operators are others.
type Operator interface {
	// Assign adds source partition p to the inputs of the watermark.
	Assign(p int32, now int64)
	// Mark applies a watermark marker for source partition p: its
	// highest event time, whether it saw any event, and whether it is
	// idle.
	Mark(p int32, maxTS int64, seen, idle bool)
	// Add processes one event of source partition p. It returns non-zero
	// when the event is late (behind what the operator has already
	// fired) and was not processed: the runtime sends it to the late
	// topic.
	Add(p int32, r *Record, now int64) (late uint64)
	// Advance appends the results due at the current watermark and since
	// the last call, and forgets them. With max > 0 it may stop once it
	// appended max of them (operators whose results come in small numbers
	// append all): a call that appends fewer than max appended all that is
	// due. The runtime calls it again, writing each slice out, until one
	// does, before it adds the next event, so that a minute's finals over
	// a million keys never sit in memory at once.
	Advance(now int64, dst []Result, max int) []Result
	// Watermark returns the event time up to which the operator has
	// fired (NoWatermark before the first).
	Watermark() int64
	// WriteChanges emits the changelog records of what changed since the
	// last call (or the snapshot), one at a time, as it encodes them: the
	// runtime writes each to the transaction at once. A record's bytes are
	// not reused after emit returns.
	WriteChanges(emit func(Change))
	// WriteSnapshot emits the whole state as changelog records, the first
	// one a snapshot start (see isSnapshotStart), and resets the change
	// tracking.
	WriteSnapshot(emit func(Change))
	// RestoreChange applies one changelog record, read in offset order.
	// The runtime replaces the operator with a fresh one at a snapshot
	// start before applying it.
	RestoreChange(key, value []byte, now int64) error
	// Groups returns how many keys the operator holds state for: the
	// snapshot policy compares it with the records written since.
	Groups() int
	// OpenWindows returns how many windows (or pending timers) are open,
	// for the open-windows gauge.
	OpenWindows() int
	// Partials appends the live, not yet final, results; operators
	// without partial results append nothing.
	Partials(dst []Result) []Result
}

var _ Operator = (*taskEngine)(nil)

// taskEngine is the window engine as the Operator of one output.
type taskEngine struct{ *Engine }

func (e taskEngine) Partials(dst []Result) []Result { return e.Engine.Partials(0, dst) }
