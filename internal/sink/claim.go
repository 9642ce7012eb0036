package sink

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Claims of result partitions (Claimer). pulse_offsets.epoch counts the
// claims of each partition: a claim adds one and returns it, and a
// fenced batch writes its offset only where the epoch is still its own
// (UPDATE ... WHERE epoch = ...), in the batch's transaction. A claim
// waits for the row lock of a batch in flight, so a batch commits either
// before the claim (and the claimer reads its offset) or not at all.
// pulse_instance holds one random id per database, which names the
// consumer group of the processes writing it.

func createClaims(ctx context.Context, tx txn, d dialect) error {
	id := make([]byte, 8)
	rand.Read(id)
	for _, stmt := range []string{
		`ALTER TABLE pulse_offsets ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0`,
		`CREATE TABLE pulse_instance (id TEXT NOT NULL)`,
		`INSERT INTO pulse_instance (id) VALUES (` + quoteString(hex.EncodeToString(id)) + `)`,
	} {
		if err := tx.exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// Instance returns the database's id (Claimer).
func (s *SQLStore) Instance(ctx context.Context) (string, error) {
	rs, err := s.c.query(ctx, `SELECT id FROM pulse_instance`)
	if err != nil {
		return "", fmt.Errorf("read pulse_instance: %w", err)
	}
	defer rs.Close()
	var id string
	if rs.Next() {
		err = rs.Scan(&id)
	}
	if err == nil {
		err = rs.Err()
	}
	if err == nil && id == "" {
		err = fmt.Errorf("no row")
	}
	if err != nil {
		return "", fmt.Errorf("read pulse_instance: %w", err)
	}
	return id, nil
}

// Claim claims tps in one transaction (Claimer). A partition without a
// stored offset gets a row with next -1, which Offsets leaves out.
func (s *SQLStore) Claim(ctx context.Context, tps []TopicPartition) (offsets, epochs map[TopicPartition]int64, err error) {
	tps = slices.Clone(tps)
	slices.SortFunc(tps, compareTP) // one lock order for every writer
	tx, err := s.c.begin(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("begin claim: %w", err)
	}
	defer tx.rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit
	offsets, epochs = map[TopicPartition]int64{}, map[TopicPartition]int64{}
	at := s.d.timeArg(now().UnixMilli())
	p := func(n int) string { return s.d.param(n, "") }
	q := `INSERT INTO pulse_offsets (sink, topic, partition, next, epoch, updated_at) VALUES (` + p(1) + `, ` + p(2) + `, ` + p(3) + `, -1, 1, ` + p(4) + `)
	ON CONFLICT (sink, topic, partition) DO UPDATE SET epoch = pulse_offsets.epoch + 1, updated_at = excluded.updated_at
	RETURNING next, epoch`
	for _, tp := range tps {
		rs, err := tx.query(ctx, q, s.sink, tp.Topic, tp.Partition, at)
		if err != nil {
			return nil, nil, fmt.Errorf("claim %s partition %d: %w", tp.Topic, tp.Partition, err)
		}
		var next, epoch int64
		if rs.Next() {
			err = rs.Scan(&next, &epoch)
		} else if err = rs.Err(); err == nil {
			err = fmt.Errorf("no row returned")
		}
		rs.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("claim %s partition %d: %w", tp.Topic, tp.Partition, err)
		}
		if next >= 0 {
			offsets[tp] = next
		}
		epochs[tp] = epoch
	}
	if err := tx.commit(ctx); err != nil {
		return nil, nil, fmt.Errorf("commit claim: %w", err)
	}
	return offsets, epochs, nil
}

func compareTP(a, b TopicPartition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// writeFencedOffsets writes the offsets of a fenced batch: each only
// where its partition's epoch is still the batch's, else ErrFenced.
func (s *SQLStore) writeFencedOffsets(ctx context.Context, tx txn, offsets, epochs map[TopicPartition]int64) error {
	tps := make([]TopicPartition, 0, len(offsets))
	for tp := range offsets {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, compareTP)
	at := s.d.timeArg(now().UnixMilli())
	p := func(n int) string { return s.d.param(n, "") }
	q := `UPDATE pulse_offsets SET next = ` + p(1) + `, updated_at = ` + p(2) + ` WHERE sink = ` + p(3) + ` AND topic = ` + p(4) +
		` AND partition = ` + p(5) + ` AND epoch = ` + p(6) + ` RETURNING 1`
	var fenced []string
	for _, tp := range tps {
		rs, err := tx.query(ctx, q, offsets[tp], at, s.sink, tp.Topic, tp.Partition, epochs[tp])
		if err != nil {
			return fmt.Errorf("write offset of %s partition %d: %w", tp.Topic, tp.Partition, err)
		}
		ok := rs.Next()
		rs.Close()
		if err := rs.Err(); err != nil {
			return fmt.Errorf("write offset of %s partition %d: %w", tp.Topic, tp.Partition, err)
		}
		if !ok {
			fenced = append(fenced, fmt.Sprintf("%s/%d", tp.Topic, tp.Partition))
		}
	}
	if len(fenced) > 0 {
		return fmt.Errorf("%w (%s)", ErrFenced, strings.Join(fenced, ", "))
	}
	return nil
}
