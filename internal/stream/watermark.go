package stream

import "math"

// NoWatermark is the watermark before any event has been seen.
const NoWatermark = math.MinInt64

// Watermarks tracks the event-time watermark of each input partition and
// combines them: a partition's watermark is the highest event time it has
// delivered minus the allowed out-of-orderness, and the combined watermark
// is the minimum over partitions that are not idle. A partition that
// delivered nothing for IdleTimeout (processing time) stops holding the
// combined watermark back; when every partition is idle the combined
// watermark is the maximum of theirs, so a stalled partition cannot hold
// windows open that the others already passed. As in Flink and Kafka
// Streams, event time advances only with events: the windows holding a
// stream's latest events close when later events arrive.
type Watermarks struct {
	// Disorder is the allowed out-of-orderness in milliseconds.
	Disorder int64
	// IdleTimeout is in milliseconds of processing time; 0 means a
	// partition turns idle only through SetIdle.
	IdleTimeout int64

	parts map[int32]*partWM
}

type partWM struct {
	maxTS    int64
	seen     bool  // whether maxTS holds an event time yet
	lastSeen int64 // processing time, ms
	backlog  bool  // records are known to wait in the partition
	idle     bool  // declared idle by the stage upstream (SetIdle)
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

// Max returns the highest event time partition p delivered, whether it
// delivered any, and whether the partition is idle at processing time now.
func (w *Watermarks) Max(p int32, now int64) (ts int64, seen, idle bool) {
	pw := w.parts[p]
	if pw == nil {
		return 0, false, false
	}
	return pw.maxTS, pw.seen, !w.active(pw, now)
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
func (w *Watermarks) Observe(p int32, ts, now int64) {
	if w.parts == nil {
		w.parts = make(map[int32]*partWM)
	}
	pw := w.parts[p]
	if pw == nil {
		pw = &partWM{}
		w.parts[p] = pw
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
		active := w.active(pw, now)
		if !pw.seen {
			if active {
				return NoWatermark
			}
			continue
		}
		wm := pw.maxTS - w.Disorder
		if wm > maxAll {
			maxAll = wm
		}
		if active && wm < minActive {
			minActive = wm
		}
	}
	if minActive == math.MaxInt64 {
		return maxAll
	}
	return minActive
}
