package serve

import (
	"encoding/csv"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/sink"
)

// csvColumns returns the columns of a CSV answer, from the pipeline file
// and not from the rows, so that every query of the same outputs has the
// same header: output, the group fields, window_start, window_end, then
// the aggregates, each in the order the outputs (queried, or all) define
// them.
func csvColumns(p *pipeline.Plan, outputs []string) (groups, aggs []string) {
	for _, o := range p.Outputs {
		if len(outputs) > 0 && !slices.Contains(outputs, o.Name) {
			continue
		}
		for _, g := range o.GroupBy {
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
		for _, a := range o.Aggregates {
			if !slices.Contains(aggs, a.Name) {
				aggs = append(aggs, a.Name)
			}
		}
	}
	return groups, aggs
}

func writeCSV(w http.ResponseWriter, p *pipeline.Plan, outputs []string, rows []sink.Row) {
	groupCols, aggCols := csvColumns(p, outputs)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	cw := csv.NewWriter(w)
	header := append([]string{"output"}, groupCols...)
	header = append(header, "window_start", "window_end")
	header = append(header, aggCols...)
	cw.Write(header)
	rec := make([]string, 0, len(header))
	var parser fastjson.Parser
	for _, row := range rows {
		rec = rec[:0]
		rec = append(rec, csvText(row.Output))
		for _, g := range groupCols {
			val := ""
			if j := slices.Index(row.GroupBy, g); j >= 0 && j < len(row.Key) {
				val = row.Key[j]
			}
			rec = append(rec, csvText(val))
		}
		rec = append(rec, time.UnixMilli(row.Start).UTC().Format(time.RFC3339), time.UnixMilli(row.End).UTC().Format(time.RFC3339))
		var obj *fastjson.Object
		if v, err := parser.ParseBytes(row.Aggs); err == nil {
			obj, _ = v.Object()
		}
		for _, a := range aggCols {
			var v *fastjson.Value
			if obj != nil {
				v = obj.Get(a)
			}
			rec = append(rec, csvValue(v))
		}
		cw.Write(rec)
	}
	cw.Flush()
}

// csvValue writes an aggregate: a number as its JSON text, a string as
// plain text, nothing for an absent value or null, other values as JSON.
func csvValue(v *fastjson.Value) string {
	if v == nil {
		return ""
	}
	switch v.Type() {
	case fastjson.TypeNull:
		return ""
	case fastjson.TypeNumber:
		return v.String()
	case fastjson.TypeString:
		return csvText(string(v.GetStringBytes()))
	}
	return csvText(string(v.MarshalTo(nil)))
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
