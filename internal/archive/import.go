package archive

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Import archives recs (records of src's topic, with their partitions
// and offsets) into store through the archiver's own write path, without
// Kafka: a roll per partition is published every rollRows events and at
// the end. For tests and benchmarks that need an archive.
func Import(ctx context.Context, store Store, src Source, recs []*kgo.Record, rollRows, rowGroupRows int) error {
	a, err := New(Config{Sources: []Source{src}, Store: store, RowGroupRows: rowGroupRows, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return err
	}
	c, err := newCodec(src)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	s := &stream{Source: src, codec: c, m: a.m.stream(src.Stream)}
	w := &worker{a: a, n: 1}
	rolls := map[int32]*roll{}
	for i, rec := range recs {
		r := rolls[rec.Partition]
		if r == nil {
			r = &roll{w: w, src: s, part: rec.Partition, from: -1, next: -1, end: -1, files: map[int64]*fileWriter{}}
			rolls[rec.Partition] = r
		}
		if err := a.add(r, rec); err != nil {
			return err
		}
		if r.rows >= rollRows {
			err = a.complete(ctx, r)
		} else if i%10_000 == 9_999 {
			err = a.flush(r)
		}
		if err != nil {
			return err
		}
	}
	for _, r := range rolls {
		if err := a.complete(ctx, r); err != nil {
			return err
		}
	}
	return nil
}
