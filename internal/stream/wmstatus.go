package stream

import (
	"cmp"
	"slices"
)

// SourceWatermark is what a shuffle stage knows of one source partition
// it reads: how far its event time got and why it holds the pipeline's
// watermark back or not.
type SourceWatermark struct {
	Topic     string
	Partition int32
	// EventTime is the highest event time the partition delivered (an
	// event ahead of the clock counts as the clock), valid when Seen.
	EventTime int64
	Seen      bool
	// Idle: nothing delivered for the pipeline's idle_timeout; Advanced
	// is then its event time advanced with the clock.
	Idle     bool
	Advanced int64
	// Backlog: records wait to be read, so it is never idle; Unread is
	// how many (-1: not known yet).
	Backlog bool
	Unread  int64
	// LastRead is the processing time of its last record (ms).
	LastRead int64
}

// WatermarkStatus is a pipeline's watermark and the source partitions it
// is computed from, as this process reads them.
type WatermarkStatus struct {
	// Watermark is NoWatermark until every partition that holds it has
	// delivered an event.
	Watermark int64
	// AllIdle: every partition is idle, so event time advances with the
	// clock (see Watermarks).
	AllIdle bool
	Sources []SourceWatermark
	// HeldBy are the indexes in Sources of the partitions that hold the
	// watermark where it is: active ones at the minimum, or active ones
	// without an event yet.
	HeldBy []int
	// Updated is the processing time of the latest report (ms), 0 when no
	// shuffle stage reported yet.
	Updated int64
}

// combineSources computes the watermark of sources by the rule of
// Watermarks, with the allowed out-of-orderness disorder (ms).
func combineSources(sources []SourceWatermark, disorder int64) WatermarkStatus {
	slices.SortFunc(sources, func(a, b SourceWatermark) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	w := Watermarks{Disorder: disorder}
	st := WatermarkStatus{Sources: sources, AllIdle: len(sources) > 0}
	for i, s := range sources {
		ts := s.EventTime
		if s.Idle {
			ts = s.Advanced
		} else {
			st.AllIdle = false
		}
		w.Mark(int32(i), ts, s.Seen, s.Idle)
	}
	st.Watermark = w.Current(0)
	if len(sources) == 0 {
		st.Watermark = NoWatermark
	}
	for i, s := range sources {
		if s.Idle {
			continue
		}
		if !s.Seen || (st.Watermark != NoWatermark && s.EventTime-disorder == st.Watermark) {
			st.HeldBy = append(st.HeldBy, i)
		}
	}
	return st
}
