package serve

import (
	"encoding/csv"
	"net/http"
	"slices"
	"strings"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/sink"
	"github.com/pulsehq/pulse/internal/stream"
)

// csvColumns returns the columns of a CSV answer, from the outputs'
// schemas and not from the rows, so that every query of the same outputs
// has the same header: output, the group fields, the bounds
// (window_start and window_end, time), then the value columns, each in
// the order the outputs (queried, or all) define them.
func csvColumns(outputs []*stream.Schema) []pipeline.Column {
	var groups, bounds, values []pipeline.Column
	add := func(dst []pipeline.Column, cs []pipeline.Column) []pipeline.Column {
		for _, c := range cs {
			if !slices.ContainsFunc(dst, func(x pipeline.Column) bool { return x.Name == c.Name }) {
				dst = append(dst, c)
			}
		}
		return dst
	}
	for _, o := range outputs {
		groups = add(groups, o.Group())
		bounds = add(bounds, o.Columns[len(o.Group()):len(o.Columns)-len(o.Values())])
		values = add(values, o.Values())
	}
	slices.SortStableFunc(bounds, func(a, b pipeline.Column) int { return boundOrder(a.Name) - boundOrder(b.Name) })
	return slices.Concat(groups, bounds, values)
}

func boundOrder(name string) int {
	switch name {
	case stream.ColWindowStart:
		return 0
	case stream.ColWindowEnd:
		return 1
	}
	return 2
}

func writeCSV(w http.ResponseWriter, outputs []*stream.Schema, rows []sink.Row) {
	cols := csvColumns(outputs)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	cw := csv.NewWriter(w)
	header := []string{"output"}
	for _, c := range cols {
		header = append(header, c.Name)
	}
	cw.Write(header)
	rec := make([]string, 0, len(header))
	at := make([]int, len(cols)) // per column, its index in the row's schema, or -1
	var last *stream.Schema
	var buf []byte
	for i := range rows {
		row := &rows[i]
		if row.Schema != last {
			last = row.Schema
			for j, c := range cols {
				at[j] = slices.IndexFunc(last.Columns, func(x pipeline.Column) bool { return x.Name == c.Name })
			}
		}
		rec = append(rec[:0], csvText(row.Output))
		for j := range cols {
			buf = buf[:0]
			if k := at[j]; k >= 0 {
				v := last.Cell(&row.Result, k)
				buf = stream.AppendCellText(buf, last.Columns[k].Type, v)
				if v.Kind == event.String {
					rec = append(rec, csvText(string(buf)))
					continue
				}
			}
			rec = append(rec, string(buf))
		}
		cw.Write(rec)
	}
	cw.Flush()
}

// csvText neutralises text that a spreadsheet would run as a formula, as
// OWASP recommends: a cell that starts with =, +, -, @, a tab or a carriage
// return gets a leading single quote. Text that is a plain decimal number
// (-3.5) is a value, not a formula, and stays as it is.
func csvText(s string) string {
	if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) || isDecimal(s) {
		return s
	}
	return "'" + s
}

// isDecimal reports whether s is a decimal number: an optional sign,
// digits with an optional fraction, an optional exponent.
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	n := digits()
	if i < len(s) && s[i] == '.' {
		i++
		n += digits()
	}
	if n == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
