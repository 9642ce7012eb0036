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

// holdIdle keeps the owned partitions active while the stage is held (a
// disk low on space): ingest refuses events meanwhile and their senders
// send them again once it accepts them, so the quiet of a hold must not
// count as idleness that advances event time.
func (s *Shuffler) holdIdle(now int64) {
	if !s.cfg.held() {
		return
	}
	for pid := range s.own {
		s.wm.Touch(pid, now)
	}
}
