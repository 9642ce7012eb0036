package aggregate

import "slices"

// fn is a Func: a name, whether it takes a field, and a state constructor.
type fn struct {
	name     string
	field    bool
	newState func() State
	// block is set for the functions whose states a Layout allocates in
	// blocks: count, sum, avg, min and max.
	block blockKind
}

type blockKind uint8

const (
	noBlock blockKind = iota
	countBlock
	sumBlock
	extremeBlock
)

func (f *fn) Name() string     { return f.name }
func (f *fn) NeedsField() bool { return f.field }
func (f *fn) New() State       { return f.newState() }

// countEvents is count(): every Add counts, whatever the value.
var countEvents Func = &fn{"count", false, func() State { return &countState{} }, countBlock}

// CountField is count(x): it counts the non-null values of x. Its name is
// "count", like count(), and LookupWithField("count") returns it.
var CountField Func = &fn{"count", true, func() State { return &countState{field: true} }, countBlock}

func numeric(name string, newState func() State) Func { return &fn{name, true, newState, noBlock} }

func blocked(name string, block blockKind, newState func() State) Func {
	return &fn{name, true, newState, block}
}

func percentile(name string, q float64) Func {
	return numeric(name, func() State { return &sketchState{q: q} })
}

// withField maps every name to its function of one field.
var withField = map[string]Func{
	"count":          CountField,
	"sum":            blocked("sum", sumBlock, func() State { return &sumState{} }),
	"avg":            blocked("avg", sumBlock, func() State { return &sumState{avg: true} }),
	"min":            blocked("min", extremeBlock, func() State { return &extremeState{} }),
	"max":            blocked("max", extremeBlock, func() State { return &extremeState{max: true} }),
	"first":          numeric("first", func() State { return &orderState{} }),
	"last":           numeric("last", func() State { return &orderState{last: true} }),
	"stddev":         numeric("stddev", func() State { return &stddevState{} }),
	"p50":            percentile("p50", 0.50),
	"p90":            percentile("p90", 0.90),
	"p95":            percentile("p95", 0.95),
	"p99":            percentile("p99", 0.99),
	"count_distinct": numeric("count_distinct", func() State { return &distinctState{} }),
}

// names is the documented order of the functions.
var names = []string{
	"count", "sum", "avg", "min", "max", "first", "last", "stddev",
	"p50", "p90", "p95", "p99", "count_distinct",
}

// Lookup returns the function for name() (no field): count, sum, avg, min,
// max, first, last, stddev, p50, p90, p95, p99, count_distinct. Only count
// is valid without a field: Lookup("count") counts events and its
// NeedsField is false. For the other names Lookup returns the same Func as
// LookupWithField, whose NeedsField is true, so that callers can report
// that the function needs a field.
func Lookup(name string) (Func, bool) {
	if name == "count" {
		return countEvents, true
	}
	return LookupWithField(name)
}

// LookupWithField returns the function for name(field). For "count" it is
// CountField, which counts the non-null values of the field; every
// function it returns has NeedsField true.
func LookupWithField(name string) (Func, bool) {
	f, ok := withField[name]
	return f, ok
}

// Names lists the function names, for error messages.
func Names() []string { return slices.Clone(names) }
