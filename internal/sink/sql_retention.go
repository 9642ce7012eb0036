package sink

import (
	"context"
	"fmt"

	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// DeleteBefore deletes at most limit rows of the current table of output
// sch of pipelineName whose bound (window start or time) is before cutoff
// (ms), in one statement: the oldest first, by primary key, so that it
// locks no more rows than it deletes.
func (s *SQLStore) DeleteBefore(ctx context.Context, pipelineName string, sch *stream.Schema, cutoff int64, limit int) (int, error) {
	t, err := s.lookup(ctx, pipelineName, sch)
	if err != nil || t == nil {
		return 0, err // no table yet: nothing stored
	}
	pk := pkColumns(sch)
	bound, keys, name := quote(pk[0]), quoteList(pk), quote(t.name)
	q := fmt.Sprintf(`DELETE FROM %s WHERE (%s) IN (SELECT %s FROM %s WHERE %s < %s ORDER BY %s LIMIT %s) RETURNING 1`,
		name, keys, keys, name, bound, s.d.param(1, s.d.columnType(pipeline.TypeTimestamp)), bound, s.d.param(2, "bigint"))
	rs, err := s.c.query(ctx, q, s.d.timeArg(cutoff), int64(limit))
	if err != nil {
		return 0, fmt.Errorf("delete expired rows of %s: %w", t.name, err)
	}
	defer rs.Close()
	n := 0
	for rs.Next() {
		n++
	}
	if err := rs.Err(); err != nil {
		return n, fmt.Errorf("delete expired rows of %s: %w", t.name, err)
	}
	return n, nil
}
