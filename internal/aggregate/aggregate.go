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

// NewStates returns an empty state of each of fs, in order, as fs[i].New
// would. The states of count, sum, avg, min and max are allocated in one
// block per type instead of one object each, so that the states of one
// window sit together in memory: folding an event into them then touches
// a few cache lines rather than one per aggregate, and a new window costs
// a few allocations rather than one per aggregate.
func NewStates(fs []Func) []State {
	states := make([]State, len(fs))
	var nc, ns, ne int
	for _, f := range fs {
		if f, ok := f.(*fn); ok {
			switch f.block {
			case countBlock:
				nc++
			case sumBlock:
				ns++
			case extremeBlock:
				ne++
			}
		}
	}
	counts := make([]countState, nc)
	sums := make([]sumState, ns)
	extremes := make([]extremeState, ne)
	for i, f := range fs {
		x, ok := f.(*fn)
		if !ok {
			states[i] = f.New()
			continue
		}
		switch x.block {
		case countBlock:
			counts[0].field = x.field
			states[i], counts = &counts[0], counts[1:]
		case sumBlock:
			sums[0].avg = x.name == "avg"
			states[i], sums = &sums[0], sums[1:]
		case extremeBlock:
			extremes[0].max = x.name == "max"
			states[i], extremes = &extremes[0], extremes[1:]
		default:
			states[i] = x.New()
		}
	}
	return states
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
