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

// ImportDay archives a day of city readings of src into st through
// Import, for benchmarks: the hour denseHour of day (Unix ms of its
// midnight) at dense events/s, the others at sparse; 1,000 sensors over
// 8 partitions keyed by sensor (reading i is sensor i%1000, partition
// sensor%8), a roll per partition every 5 minutes of events (as
// Roll.Age does), row groups of 122,880 rows.
func ImportDay(ctx context.Context, st Store, src Source, day, denseHour int64, dense, sparse int) error {
	offs := make([]int64, 8)
	var recs []*kgo.Record
	for m := int64(0); m < 24*12; m++ { // 5-minute rolls
		rate := int64(sparse)
		if m/12 == denseHour {
			rate = int64(dense)
		}
		start, n := day+m*300_000, rate*300
		recs = recs[:0]
		for i := range n {
			s := i % 1000
			p := int32(s % 8)
			ts := start + i*1000/rate
			v := fmt.Sprintf(`{"sensor_id":"S-%04d","zone":"zone-%02d","kind":"traffic","ts":%d,"speed_kmh":%d.5,"vehicle_count":%d}`, s, s%20, ts, i%90, i%40)
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "S-%04d", s), Value: []byte(v), Partition: p, Offset: offs[p]})
			offs[p]++
		}
		if err := Import(ctx, st, src, recs, int(n), 122_880); err != nil {
			return err
		}
	}
	return nil
}
