package stream

import (
	"math"

	"github.com/pulsehq/pulse/internal/pipeline"
)

// NoWatermark is the watermark before any event has been seen.
const NoWatermark = math.MinInt64

// Watermarks tracks the event-time watermark of each input partition and
// combines them: a partition's watermark is the highest event time it has
// delivered minus the allowed out-of-orderness, and the combined watermark
// is the minimum over partitions that are not idle. A partition that
// delivered nothing for IdleTimeout (processing time) stops holding the
// combined watermark back. When every partition is idle the combined
// watermark is the maximum of theirs, and the event time of a live
// partition keeps pace with the clock: an idle partition whose newest
// event was at most LiveLag behind the clock when it was read has as
// event time that one plus the processing time it has been idle, up to
// Horizon past it. So the windows holding a live stream's latest events
// close once it has been quiet for IdleTimeout plus their remaining
// length, although no later event arrives. The event time of a partition
// whose events are further behind the clock (a backfill, a replay) is not
// tied to the clock and does not advance: its windows close when later
// events arrive.
type Watermarks struct {
	// Disorder is the allowed out-of-orderness in milliseconds.
	Disorder int64
	// IdleTimeout is in milliseconds of processing time; 0 means a
	// partition turns idle only through SetIdle.
	IdleTimeout int64
	// Horizon bounds, in milliseconds, how far an idle partition's event
	// time advances with the clock past the highest event time it
	// delivered; 0: it does not advance. IdleHorizon gives a plan's: past
	// it no window of the plan's can still be open.
	Horizon int64
	// Clock caps every observed event time at the processing time it is
	// observed at: an event ahead of the clock (a sender whose clock runs
	// fast) moves its partition's event time only up to the clock, so it
	// cannot make the events of every other sender late.
	Clock bool

	parts map[int32]*partWM
}

type partWM struct {
	maxTS    int64
	seen     bool  // whether maxTS holds an event time yet
	lastSeen int64 // processing time, ms
	backlog  bool  // records are known to wait in the partition
	idle     bool  // declared idle by the stage upstream (SetIdle)
	// advTS is the event time a declared-idle partition advanced to, as
	// its marker reports it (advSeen: it reported one).
	advTS   int64
	advSeen bool
}

// LiveLag is how far behind the clock (ms) the newest event of a
// partition may have been when it was read for the partition to count as
// live, so that its event time advances with the clock while it is idle.
// A stream further behind is a backfill or a replay, whose pace the clock
// says nothing about.
const LiveLag = 3_600_000

// advanceStep is the granularity of an idle partition's advance: its
// markers change once a second, not on every commit.
const advanceStep = 1000

// IdleHorizon returns how far past its latest event time an idle
// partition's event time must advance for every window of plan holding
// that event to close and be dropped: the allowed out-of-orderness, the
// longest window (or session gap) and the allowed lateness.
func IdleHorizon(plan *pipeline.Plan) int64 {
	var longest int64
	for _, o := range plan.Outputs {
		longest = max(longest, o.Window.Size.Milliseconds(), o.Window.Gap.Milliseconds())
	}
	t := plan.Time
	return t.MaxOutOfOrderness.Milliseconds() + longest + t.AllowedLateness.Milliseconds()
}

// SetBacklog records whether partition p has records waiting to be read.
// A partition with a backlog is never idle, however long ago it last
// delivered: while a consumer catches up, partitions it has not reached
// yet must keep holding the watermark.
func (w *Watermarks) SetBacklog(p int32, backlog bool) {
	if pw := w.parts[p]; pw != nil {
		pw.backlog = backlog
	}
}

// SetIdle declares partition p idle or active. A window task reading a
// repartition topic learns each source partition's state from the
// watermark markers written upstream instead of from its own clock, so
// that replaying the topic decides the same way.
func (w *Watermarks) SetIdle(p int32, idle bool) {
	if pw := w.parts[p]; pw != nil {
		pw.idle = idle
		if !idle {
			pw.advSeen = false
		}
	}
}

// Raise records that partition p has delivered event times up to ts,
// as a watermark marker reports it; lower values change nothing.
func (w *Watermarks) Raise(p int32, ts int64) {
	pw := w.parts[p]
	if pw == nil {
		return
	}
	if !pw.seen || ts > pw.maxTS {
		pw.maxTS, pw.seen = ts, true
	}
}

// Mark applies a watermark marker's entry for partition p, as Max
// returned it upstream: an active partition's ts is the highest event
// time it delivered; an idle one's is the event time it advanced to,
// which counts only while every partition is idle.
func (w *Watermarks) Mark(p int32, ts int64, seen, idle bool) {
	w.Assign(p, 0)
	pw := w.parts[p]
	switch {
	case !seen:
	case idle:
		if !pw.advSeen || ts > pw.advTS {
			pw.advTS, pw.advSeen = ts, true
		}
	default:
		w.Raise(p, ts)
	}
	w.SetIdle(p, idle)
}

// Max returns partition p's event time, whether it has one, and whether
// the partition is idle at processing time now. An active partition's
// event time is the highest it delivered; an idle one's is advanced with
// the clock (see Watermarks).
func (w *Watermarks) Max(p int32, now int64) (ts int64, seen, idle bool) {
	pw := w.parts[p]
	if pw == nil {
		return 0, false, false
	}
	if w.active(pw, now) {
		return pw.maxTS, pw.seen, false
	}
	ts, seen = w.advanced(pw, now)
	return ts, seen, true
}

// advanced returns the event time of an idle partition: the highest it
// delivered plus the processing time it has been idle beyond
// IdleTimeout, in whole steps and at most Horizon, when that highest
// event time was at most LiveLag behind the clock as it was read.
func (w *Watermarks) advanced(pw *partWM, now int64) (int64, bool) {
	ts, seen := pw.maxTS, pw.seen
	if pw.advSeen && (!seen || pw.advTS > ts) {
		ts, seen = pw.advTS, true
	}
	if !pw.seen || pw.idle || w.IdleTimeout <= 0 || w.Horizon <= 0 || pw.lastSeen-pw.maxTS > LiveLag {
		return ts, seen
	}
	quiet := now - pw.lastSeen - w.IdleTimeout
	quiet -= quiet % advanceStep
	return max(ts, pw.maxTS+min(max(quiet, 0), w.Horizon)), true
}

// Unassign forgets partition p.
func (w *Watermarks) Unassign(p int32) { delete(w.parts, p) }

// Partitions returns the registered partitions.
func (w *Watermarks) Partitions() []int32 {
	out := make([]int32, 0, len(w.parts))
	for p := range w.parts {
		out = append(out, p)
	}
	return out
}

func (w *Watermarks) active(pw *partWM, now int64) bool {
	return !pw.idle && (pw.backlog || w.IdleTimeout <= 0 || now-pw.lastSeen < w.IdleTimeout)
}

// Assign registers partition p at processing time now. Until it delivers
// an event or turns idle, an assigned partition holds the combined
// watermark back: records it has not delivered yet may be older than
// everything seen so far.
func (w *Watermarks) Assign(p int32, now int64) {
	if w.parts == nil {
		w.parts = make(map[int32]*partWM)
	}
	if w.parts[p] == nil {
		w.parts[p] = &partWM{lastSeen: now}
	}
}

// Observe records an event time ts on partition p at processing time now.
// With Clock, a ts ahead of now counts as now.
func (w *Watermarks) Observe(p int32, ts, now int64) {
	if w.parts == nil {
		w.parts = make(map[int32]*partWM)
	}
	pw := w.parts[p]
	if pw == nil {
		pw = &partWM{}
		w.parts[p] = pw
	}
	if w.Clock && ts > now {
		ts = now
	}
	if !pw.seen || ts > pw.maxTS {
		pw.maxTS, pw.seen = ts, true
	}
	pw.lastSeen = now
}

// Touch marks partition p as active at processing time now without an
// event, used for partitions whose fetches return records that were all
// rejected.
func (w *Watermarks) Touch(p int32, now int64) {
	if pw := w.parts[p]; pw != nil {
		pw.lastSeen = now
	}
}

// Current returns the combined watermark at processing time now.
func (w *Watermarks) Current(now int64) int64 {
	minActive, maxAll := int64(math.MaxInt64), int64(NoWatermark)
	for _, pw := range w.parts {
		if !w.active(pw, now) {
			if ts, seen := w.advanced(pw, now); seen {
				maxAll = max(maxAll, ts-w.Disorder)
			}
			continue
		}
		if !pw.seen {
			return NoWatermark
		}
		wm := pw.maxTS - w.Disorder
		maxAll = max(maxAll, wm)
		minActive = min(minActive, wm)
	}
	if minActive == math.MaxInt64 {
		return maxAll
	}
	return minActive
}

// PartState is what Watermarks knows of one partition, for status pages.
type PartState struct {
	// MaxTS is the highest event time delivered (when Seen); Advanced is
	// the event time of an idle partition advanced with the clock.
	MaxTS, Advanced int64
	Seen, Idle      bool
	Backlog         bool
	// LastSeen is the processing time of its last record (ms).
	LastSeen int64
}

// State returns partition p's state at processing time now.
func (w *Watermarks) State(p int32, now int64) (PartState, bool) {
	pw := w.parts[p]
	if pw == nil {
		return PartState{}, false
	}
	st := PartState{MaxTS: pw.maxTS, Advanced: pw.maxTS, Seen: pw.seen, Backlog: pw.backlog, LastSeen: pw.lastSeen}
	if !w.active(pw, now) {
		st.Idle = true
		st.Advanced, _ = w.advanced(pw, now)
	}
	return st, true
}
