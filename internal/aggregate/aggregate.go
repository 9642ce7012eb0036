package aggregate

import "github.com/pulsehq/pulse/internal/event"

// Func is an aggregate function, e.g. avg.
type Func interface {
	// Name is the function's name in pipeline files, e.g. "avg".
	Name() string
	// NeedsField reports whether the function takes an input field
	// (count does not).
	NeedsField() bool
	// New returns an empty state.
	New() State
}

// State is the running state of one aggregate in one window.
type State interface {
	// Add folds one input value in. Null values are ignored by every
	// function except count without a field, which counts events.
	Add(v event.Value, ts int64)
	// Merge folds another state of the same function into this one.
	Merge(o State)
	// Result returns the aggregate's value; ok is false when there is none
	// (e.g. avg of no values), and the field is then left out of results.
	Result() (v event.Value, ok bool)
	// AppendBinary appends the serialized state; Decode reads it back.
	AppendBinary(dst []byte) []byte
	Decode(src []byte) error
}

// Layout places the states of a list of aggregates (one output's) in
// memory. Count, sum, avg, min and max states are allocated in one block
// per type instead of one object each, so that the states of one window
// sit together: folding an event into them touches a few cache lines
// rather than one per aggregate, and a new window costs a few allocations
// rather than one per aggregate. Add updates those states directly,
// without an interface call.
type Layout struct {
	fs         []Func
	kind       []blockKind
	idx        []int32 // index of aggregate i in its block, or among the others
	empty      []State // a new state of each blocked aggregate, copied into the blocks
	nc, ns, ne int
	nr         int // aggregates outside the blocks
}

// Blocks holds the states of one window's count, sum, avg, min and max
// aggregates, by type; the State values New returns point into them.
type Blocks struct {
	counts   []countState
	sums     []sumState
	extremes []extremeState
}

// NewLayout returns the layout of the states of fs.
func NewLayout(fs []Func) *Layout {
	l := &Layout{fs: fs, kind: make([]blockKind, len(fs)), idx: make([]int32, len(fs)), empty: make([]State, len(fs))}
	for i, f := range fs {
		x, ok := f.(*fn)
		if !ok || x.block == noBlock {
			l.idx[i], l.nr = int32(l.nr), l.nr+1
			continue
		}
		l.kind[i] = x.block
		l.empty[i] = x.New()
		switch x.block {
		case countBlock:
			l.idx[i], l.nc = int32(l.nc), l.nc+1
		case sumBlock:
			l.idx[i], l.ns = int32(l.ns), l.ns+1
		case extremeBlock:
			l.idx[i], l.ne = int32(l.ne), l.ne+1
		}
	}
	return l
}

// New returns an empty state of each aggregate, in order, as its Func's
// New would, and sets b to the blocks they point into.
func (l *Layout) New(b *Blocks) []State {
	states := make([]State, len(l.fs))
	b.counts = make([]countState, l.nc)
	b.sums = make([]sumState, l.ns)
	b.extremes = make([]extremeState, l.ne)
	for i, f := range l.fs {
		k := l.idx[i]
		switch l.kind[i] {
		case countBlock:
			b.counts[k] = *l.empty[i].(*countState)
			states[i] = &b.counts[k]
		case sumBlock:
			b.sums[k] = *l.empty[i].(*sumState)
			states[i] = &b.sums[k]
		case extremeBlock:
			b.extremes[k] = *l.empty[i].(*extremeState)
			states[i] = &b.extremes[k]
		default:
			states[i] = f.New()
		}
	}
	return states
}

// Add folds v into aggregate i of a window whose states New returned
// along with b: the same as states[i].Add(v, ts).
func (l *Layout) Add(b *Blocks, states []State, i int, v event.Value, ts int64) {
	switch l.kind[i] {
	case countBlock:
		b.counts[l.idx[i]].Add(v, ts)
	case sumBlock:
		b.sums[l.idx[i]].Add(v, ts)
	case extremeBlock:
		b.extremes[l.idx[i]].Add(v, ts)
	default:
		states[i].Add(v, ts)
	}
}

// Len returns the number of aggregates.
func (l *Layout) Len() int { return len(l.fs) }

// NewCompact is New without the slice of every state: it returns only
// the states of the aggregates outside the blocks (nil when there are
// none), in order, and sets b to new blocks. A window of 45 aggregates
// saves the 720 bytes of an interface slice that points into its blocks;
// State returns the state of any aggregate.
func (l *Layout) NewCompact(b *Blocks) []State {
	b.counts = make([]countState, l.nc)
	b.sums = make([]sumState, l.ns)
	b.extremes = make([]extremeState, l.ne)
	var rest []State
	if l.nr > 0 {
		rest = make([]State, 0, l.nr)
	}
	for i, f := range l.fs {
		k := l.idx[i]
		switch l.kind[i] {
		case countBlock:
			b.counts[k] = *l.empty[i].(*countState)
		case sumBlock:
			b.sums[k] = *l.empty[i].(*sumState)
		case extremeBlock:
			b.extremes[k] = *l.empty[i].(*extremeState)
		default:
			rest = append(rest, f.New())
		}
	}
	return rest
}

// State returns the state of aggregate i of a window that NewCompact made
// with b and rest.
func (l *Layout) State(b *Blocks, rest []State, i int) State {
	k := l.idx[i]
	switch l.kind[i] {
	case countBlock:
		return &b.counts[k]
	case sumBlock:
		return &b.sums[k]
	case extremeBlock:
		return &b.extremes[k]
	}
	return rest[k]
}

// AddCompact folds v into aggregate i of a window that NewCompact made
// with b and rest: the same as State(b, rest, i).Add(v, ts).
func (l *Layout) AddCompact(b *Blocks, rest []State, i int, v event.Value, ts int64) {
	k := l.idx[i]
	switch l.kind[i] {
	case countBlock:
		b.counts[k].Add(v, ts)
	case sumBlock:
		b.sums[k].Add(v, ts)
	case extremeBlock:
		b.extremes[k].Add(v, ts)
	default:
		rest[k].Add(v, ts)
	}
}

// KeepsValues reports whether the states of f keep values passed to Add
// beyond the call (first and last do); the others read them and keep only
// numbers, counts and hashes. Callers may pass strings that point into
// memory they reuse only to functions that keep none.
func KeepsValues(f Func) bool {
	switch f.Name() {
	case "first", "last":
		return true
	}
	return false
}

// IsNew reports whether s is known to encode exactly as a new state of its
// function: nothing was folded into it. It returns false when it cannot
// tell cheaply; encoding s and comparing the bytes then decides. A
// changelog writes new states as a single byte.
func IsNew(s State) bool {
	switch x := s.(type) { // concrete types: cheaper than asserting an interface
	case *countState:
		return x.isNew()
	case *sumState:
		return x.isNew()
	case *extremeState:
		return x.isNew()
	}
	return false
}
