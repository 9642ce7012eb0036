package stream

// Tumbling assigns event times to fixed, non-overlapping windows
// [start, start+Size) aligned to the Unix epoch. Times are milliseconds.
type Tumbling struct{ Size int64 }

// Start returns the start of the window containing ts. It rounds toward
// negative infinity so that times before the epoch are assigned correctly.
func (t Tumbling) Start(ts int64) int64 {
	s := ts - ts%t.Size
	if ts%t.Size < 0 {
		s -= t.Size
	}
	return s
}
