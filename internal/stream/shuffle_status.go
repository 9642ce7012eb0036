package stream

// statusEvery is how often (ms) a shuffle stage reports its source
// partitions to the board.
const statusEvery = 250

// publishStatus reports the owned source partitions' event times to the
// board, for the watermark API and the dashboard.
func (s *Shuffler) publishStatus(now int64) {
	b := s.cfg.Board
	if b == nil || now-s.statusAt < statusEvery {
		return
	}
	s.statusAt = now
	parts := make([]SourceWatermark, 0, len(s.own))
	topics := s.cfg.Plan.Source.Topics
	for pid, tp := range s.own {
		st, ok := s.wm.State(pid, now)
		if !ok {
			continue
		}
		sw := SourceWatermark{Topic: topics[pid>>16], Partition: pid & 0xffff, EventTime: st.MaxTS, Seen: st.Seen,
			Idle: st.Idle, Advanced: st.Advanced, Backlog: st.Backlog, Unread: -1, LastRead: st.LastSeen}
		if next, ok := s.next[tp]; ok {
			sw.Unread = max(s.hwm[tp]-max(next, s.low[tp]), 0)
		}
		parts = append(parts, sw)
	}
	b.SetSources(s.cfg.Plan.Name, s.cfg.worker, parts, now)
}
