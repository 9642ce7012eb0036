package sink

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// Cursor returns the row's position in the query order, for Query.After.
func (r *Row) Cursor() Cursor {
	return Cursor{Output: r.Output, Start: r.Start, Key: event.JoinKey(r.Key)}
}

// Query returns the matching results ordered by output, window start (or
// time) and group fields, each decoded by its output's schema. It reads
// each output's table in turn, until the limit.
func (s *SQLStore) Query(ctx context.Context, q Query) ([]Row, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100000
	}
	outputs := slices.Clone(q.Outputs)
	slices.SortFunc(outputs, func(a, b *stream.Schema) int { return cmp.Compare(a.Output, b.Output) })
	outputs = slices.CompactFunc(outputs, func(a, b *stream.Schema) bool { return a.Output == b.Output })
	var out []Row
	for _, o := range outputs {
		if len(out) >= limit {
			break
		}
		if q.After != nil && o.Output < q.After.Output {
			continue
		}
		t, err := s.lookup(ctx, q.Pipeline, o)
		if err != nil {
			return nil, err
		}
		if t == nil {
			continue
		}
		if out, err = s.queryTable(ctx, t, o, q, limit-len(out), out); err != nil {
			return nil, fmt.Errorf("query results of %s/%s: %w", q.Pipeline, o.Output, err)
		}
	}
	return out, nil
}

// queryTable appends the rows of one output's table that q selects, at
// most limit.
func (s *SQLStore) queryTable(ctx context.Context, t *table, o *stream.Schema, q Query, limit int, out []Row) ([]Row, error) {
	groups := o.Group()
	bound := o.Columns[len(groups)].Name
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return s.d.param(len(args), "")
	}
	if q.Key != nil {
		n := len(groups) - len(q.Key)
		switch {
		case n == 0, n == 1 && o.Kind != pipeline.KindWindow:
			// An events or detect output's rows have one more identity
			// column after the group fields (event_id, field).
			for i, k := range q.Key {
				where = append(where, quote(groups[i].Name)+" = "+arg(s.d.text(k)))
			}
		default:
			return out, nil
		}
	}
	if c := q.After; c != nil && c.Output == o.Output {
		key, err := event.SplitKey(c.Key, len(groups))
		if err != nil {
			return nil, errCursor
		}
		cols := []string{quote(bound)}
		vals := []string{arg(s.d.timeArg(c.Start))}
		for i, g := range groups {
			cols = append(cols, quote(g.Name))
			vals = append(vals, arg(s.d.text(key[i])))
		}
		where = append(where, "("+strings.Join(cols, ", ")+") > ("+strings.Join(vals, ", ")+")")
	}
	if q.From != 0 {
		where = append(where, quote(bound)+" >= "+arg(s.d.timeArg(q.From)))
	}
	if q.To != 0 {
		where = append(where, quote(bound)+" < "+arg(s.d.timeArg(q.To)))
	}
	// The schema's columns, those the table has; the others read null.
	sel := make([]string, 0, len(o.Columns))
	var cols []int // the schema columns selected after the identity and bounds
	bounds := len(o.Columns) - len(o.Values())
	for i, c := range o.Columns {
		if i >= bounds {
			if _, ok := t.has(c.Name); !ok {
				continue
			}
			cols = append(cols, i-bounds)
		}
		sel = append(sel, s.d.readExpr(c.Name, c.Type))
	}
	sql := "SELECT " + strings.Join(sel, ", ") + " FROM " + quote(t.name)
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY " + quoteList(pkColumns(o)) + " LIMIT " + arg(int64(limit))
	rs, err := s.c.query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	groupBy := make([]string, len(groups))
	for i, g := range groups {
		groupBy[i] = g.Name
	}
	if len(groupBy) == 0 {
		groupBy = nil
	}
	vals := o.Values()
	dest := make([]any, len(sel))
	cells := make([]any, len(sel))
	for i := range dest {
		dest[i] = &cells[i]
	}
	for rs.Next() {
		if err := rs.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read result row: %w", err)
		}
		r := Row{Schema: o, Result: stream.Result{Output: o.Output, GroupBy: groupBy, Final: true,
			Names: o.ValueNames(), Values: make([]event.Value, len(vals))}}
		if len(groups) > 0 {
			r.Key = make([]string, len(groups))
		}
		for i := range groups {
			k, ok := cells[i].(string)
			if b, isBytes := cells[i].([]byte); isBytes {
				k, ok = string(b), true
			}
			if !ok {
				return nil, fmt.Errorf("group field %s holds %T", groups[i].Name, cells[i])
			}
			r.Key[i] = k
		}
		if r.Start, err = readTime(cells[len(groups)]); err != nil {
			return nil, fmt.Errorf("%s: %w", bound, err)
		}
		r.End = r.Start
		next := len(groups) + 1
		if o.Windowed() {
			if r.End, err = readTime(cells[next]); err != nil {
				return nil, fmt.Errorf("%s: %w", stream.ColWindowEnd, err)
			}
			next++
		}
		for j, vi := range cols {
			if r.Values[vi], err = readCell(vals[vi].Type, cells[next+j]); err != nil {
				return nil, fmt.Errorf("%s: %w", vals[vi].Name, err)
			}
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
