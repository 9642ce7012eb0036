package stream

// The window engine keeps its changelog bounded by cleaning it rather than
// by writing snapshots of the whole state. Every changelog flush is a
// generation; each group remembers the generation that holds its latest
// record (keyState.gen), and logGens counts, per generation, the groups
// whose latest record it holds and the records it wrote. The records
// before the oldest generation that still holds a live group's latest
// record are garbage: every live group has a later record, and a group
// dropped since has a tombstone later still. The window stage deletes
// them once that generation is committed.
//
// A group that no event changes for long pins the oldest generation, so a
// flush whose changelog has grown past its bound (snapshotRatio times the
// groups) rewrites, unchanged, the groups whose latest record lies beyond
// that bound: it finds them by sweeping the store a little at every flush
// (GroupStore.Sweep). Where most groups change often, as with a million
// sensors reporting every few seconds, events rewrite nearly every group
// before it is old and the cleaning writes few records; a snapshot wrote
// every group each time the changelog grew by twice the state.
// Where groups change rarely, the cleaning rewrites each once per bound,
// as often as snapshots did.

// restoredGen is the generation of the groups a task restored from its
// changelog: it stands for the records of the changelog as the restore
// found them, so while a restored group is not rewritten nothing of the
// changelog is deleted. The engine's first flush is generation 1.
const restoredGen = 0

// logGens counts, per changelog generation from base on, the live groups
// whose latest record it holds and the records it wrote. The last
// generation is the one the next flush writes.
type logGens struct {
	base uint64
	live []int
	recs []int
}

func newLogGens() logGens { return logGens{base: restoredGen, live: []int{0, 0}, recs: []int{0, 0}} }

// restored counts a record a restore read: the changelog a restore
// read is generation restoredGen.
func (g *logGens) restored() {
	if g.base == restoredGen {
		g.recs[0]++
	}
}

// cur returns the generation the next flush writes.
func (g *logGens) cur() uint64 { return g.base + uint64(len(g.live)) - 1 }

// add counts a new group whose latest record is (or will be) in gen.
func (g *logGens) add(gen uint64) { g.live[gen-g.base]++ }

// remove uncounts a group of gen, dropped.
func (g *logGens) remove(gen uint64) { g.live[gen-g.base]-- }

// move makes ks a group of the current generation: it is written by the
// next flush.
func (g *logGens) move(ks *keyState) {
	if ks.gen == g.cur() {
		return
	}
	g.remove(ks.gen)
	ks.gen = g.cur()
	g.add(ks.gen)
}

// next ends the current generation, which wrote recs records, and forgets
// the generations before the oldest one holding a live group's record.
func (g *logGens) next(recs int) {
	g.recs[len(g.recs)-1] += recs
	g.live, g.recs = append(g.live, 0), append(g.recs, 0)
	n := 0
	for n < len(g.live)-1 && g.live[n] == 0 {
		n++
	}
	if n > 0 {
		g.live, g.recs = append(g.live[:0], g.live[n:]...), append(g.recs[:0], g.recs[n:]...)
		g.base += uint64(n)
	}
}

// start returns the oldest generation a restore needs.
func (g *logGens) start() uint64 { return g.base }

// staleBelow returns the generation whose groups' records a flush that
// wrote pending records so far rewrites to keep the changelog within
// bound records: the groups of the generations before it. It returns
// base (nothing is stale) while the changelog is within the bound.
func (g *logGens) staleBelow(bound, pending int) uint64 {
	sum := pending
	for i := len(g.recs) - 1; i >= 0; i-- {
		sum += g.recs[i]
		if sum > bound {
			return g.base + uint64(i) + 1
		}
	}
	return g.base
}
