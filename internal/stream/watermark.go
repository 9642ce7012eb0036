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
	// IdleTimeout is in milliseconds of processing time.
	IdleTimeout int64

	parts map[int32]*partWM
}

type partWM struct {
	maxTS    int64
	seen     bool  // whether maxTS holds an event time yet
	lastSeen int64 // processing time, ms
	backlog  bool  // records are known to wait in the partition
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
		active := pw.backlog || now-pw.lastSeen < w.IdleTimeout
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

// PartitionMax returns the highest event time seen per partition, for
// checkpoints.
func (w *Watermarks) PartitionMax() map[int32]int64 {
	out := make(map[int32]int64, len(w.parts))
	for p, pw := range w.parts {
		if pw.seen {
			out[p] = pw.maxTS
		}
	}
	return out
}

// Restore sets the per-partition maxima from a checkpoint, treating each
// partition as last seen at now.
func (w *Watermarks) Restore(max map[int32]int64, now int64) {
	w.parts = make(map[int32]*partWM, len(max))
	for p, ts := range max {
		w.parts[p] = &partWM{maxTS: ts, seen: true, lastSeen: now}
	}
}
