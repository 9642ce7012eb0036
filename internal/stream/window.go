package stream

// floorDiv rounds a/b toward negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// tumblingStart returns the start of the size-ms window containing ts;
// windows are [start, start+size) aligned to the Unix epoch.
func tumblingStart(ts, size int64) int64 { return floorDiv(ts, size) * size }

// hoppingStarts appends the starts of every window [s, s+size) with s a
// multiple of slide that contains ts, oldest first.
func hoppingStarts(dst []int64, ts, size, slide int64) []int64 {
	last := floorDiv(ts, slide) * slide
	for s := last - size + slide; s <= last; s += slide {
		if s <= ts && ts < s+size {
			dst = append(dst, s)
		}
	}
	return dst
}
