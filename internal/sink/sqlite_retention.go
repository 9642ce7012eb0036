package sink

import (
	"context"
	"fmt"

	"github.com/pulsehq/pulse/internal/stream"
)

// DeleteBefore deletes at most limit rows of output s of pipeline whose
// window start (or time) is before cutoff, in one transaction.
func (s *SQLite) DeleteBefore(ctx context.Context, pipeline string, sch *stream.Schema, cutoff int64, limit int) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM window_results WHERE rowid IN (
		SELECT rowid FROM window_results WHERE pipeline = ? AND output = ? AND window_start < ? LIMIT ?)`,
		pipeline, sch.Output, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired results: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired results: %w", err)
	}
	return int(n), nil
}
