package broker

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Crash recovery of transactions, run on the data dir before kfake loads
// it.
//
// A transaction still open when Pulse was killed (its records appended,
// no EndTxn yet) is aborted by kfake when it reloads the log, but only in
// memory: no abort marker is written. A read_committed consumer is then
// told that the producer's transaction starting there was aborted and
// skips every transactional batch of that producer from there on until
// it reads an abort marker, as the Kafka protocol has it. There is none,
// so it also skips, in the same fetch response, the transactions the
// same producer (a stage restarted with the same transactional id)
// committed after the restart: committed records vanish, and a changelog
// restore waiting to read up to the partition's end never gets there.
// Real Kafka's transaction coordinator writes the abort markers. So does
// this: for every producer whose last transactional batches in a
// partition have no marker after them, it appends an abort marker to the
// partition's log, as kfake's own EndTxn would have written it.

// kfake's on-disk format (persist.go): a partition is a directory of
// segments <base>.dat, RecordBatches back to back, each with an index
// <base>.idx of one 15-byte entry per batch.
const (
	idxEntrySize = 15
	idxVersion   = 1
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// segment is one parsed segment file of a partition.
type segment struct {
	dat, idx string
	valid    int64 // bytes of whole, valid batches; kfake drops the rest
	batches  []kmsg.RecordBatch
	idxRaw   []byte
}

// recoverOpenTxns appends an abort marker for every transaction left open
// in dataDir by a crash. After a clean shutdown kfake restores the open
// transactions itself (session_state.json), and a fresh dir has nothing.
func recoverOpenTxns(dataDir string, log *slog.Logger) error {
	if _, err := os.Stat(filepath.Join(dataDir, "meta.json")); err != nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dataDir, "session_state.json")); err == nil {
		return nil
	}
	parts, err := os.ReadDir(filepath.Join(dataDir, "partitions"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read broker partitions: %w", err)
	}
	for _, p := range parts {
		if !p.IsDir() {
			continue
		}
		dir := filepath.Join(dataDir, "partitions", p.Name())
		n, err := abortOpenTxns(dir, time.Now())
		if err != nil {
			return fmt.Errorf("abort the transactions a crash left open in %s: %w", dir, err)
		}
		if n > 0 {
			log.Warn("embedded broker: aborted transactions left open by a crash", "component", "broker", "partition", p.Name(), "transactions", n)
		}
	}
	return nil
}

// abortOpenTxns writes the missing abort markers of one partition
// directory and returns how many it wrote. It also gives the last
// segment's index the entries a crash left out, so that kfake reads each
// batch's flags at the right position.
func abortOpenTxns(dir string, now time.Time) (int, error) {
	segs, err := readSegments(dir)
	if err != nil || len(segs) == 0 {
		return 0, err
	}
	// Replay as kfake does (loadPartitionFullReplay): a producer's
	// transaction is open from its first transactional data batch until
	// a control batch of that producer.
	open := map[int64]int16{} // producer id → epoch of its open transaction
	for _, s := range segs {
		for j := range s.batches {
			b := &s.batches[j]
			switch {
			case b.Attributes&0x20 != 0:
				delete(open, b.ProducerID)
			case s.inTx(j):
				open[b.ProducerID] = b.ProducerEpoch
			}
		}
	}
	s := &segs[len(segs)-1]
	var idx []byte
	for j := len(s.idxRaw) / idxEntrySize; j < len(s.batches); j++ {
		b := &s.batches[j]
		idx = appendIdxEntry(idx, b.PartitionLeaderEpoch, b.MaxTimestamp, s.inTx(j))
	}
	if len(open) == 0 && len(idx) == 0 {
		return 0, nil
	}
	pids := make([]int64, 0, len(open))
	for pid := range open {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	last := &s.batches[len(s.batches)-1]
	next := last.FirstOffset + int64(last.LastOffsetDelta) + 1
	var dat []byte
	for _, pid := range pids {
		dat = append(dat, abortMarker(pid, open[pid], next, last.PartitionLeaderEpoch, now)...)
		idx = appendIdxEntry(idx, last.PartitionLeaderEpoch, now.UnixMilli(), false)
		next++
	}
	if len(dat) > 0 {
		if err := appendAt(s.dat, s.valid, dat); err != nil {
			return 0, err
		}
	}
	keep := min(len(s.idxRaw)/idxEntrySize, len(s.batches)) * idxEntrySize
	if err := appendAt(s.idx, int64(keep), idx); err != nil {
		return 0, err
	}
	return len(pids), nil
}

// inTx reports whether batch j of s is transactional data, as kfake
// reads it: from the index entry when there is a valid one, else from
// the batch (kfake writes the entry right after the batch, so a crash
// can leave it out).
func (s *segment) inTx(j int) bool {
	if e := s.idxRaw[min(j*idxEntrySize, len(s.idxRaw)):]; len(e) >= idxEntrySize && byte(crc32.Checksum(e[2:idxEntrySize], crc32c)) == e[1] {
		return e[14]&1 != 0
	}
	b := &s.batches[j]
	return b.Attributes&0x10 != 0 && b.Attributes&0x20 == 0
}

// readSegments parses the segments of a partition directory in offset
// order.
func readSegments(dir string) ([]segment, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, e := range entries {
		if base, ok := strings.CutSuffix(e.Name(), ".dat"); ok {
			if n, err := strconv.ParseInt(base, 10, 64); err == nil {
				bases = append(bases, n)
			}
		}
	}
	slices.Sort(bases)
	var segs []segment
	for _, base := range bases {
		s := segment{dat: filepath.Join(dir, strconv.FormatInt(base, 10)+".dat"), idx: filepath.Join(dir, strconv.FormatInt(base, 10)+".idx")}
		raw, err := os.ReadFile(s.dat)
		if err != nil {
			return nil, err
		}
		s.idxRaw, _ = os.ReadFile(s.idx) // missing: every entry is
		for pos := 0; pos+12 <= len(raw); {
			n := int(binary.BigEndian.Uint32(raw[pos+8 : pos+12]))
			if n < 0 || n > 1<<30 || pos+12+n > len(raw) || pos+12+n < pos+21 {
				break
			}
			b := raw[pos : pos+12+n]
			if binary.BigEndian.Uint32(b[17:21]) != crc32.Checksum(b[21:], crc32c) {
				break
			}
			var rb kmsg.RecordBatch
			if rb.ReadFrom(b) != nil {
				break
			}
			s.batches = append(s.batches, rb)
			pos += len(b)
			s.valid = int64(pos)
		}
		if len(s.batches) > 0 {
			segs = append(segs, s)
		}
	}
	return segs, nil
}

// abortMarker encodes the control batch ending producer pid's transaction
// with an abort, at offset, as kfake's EndTxn writes it.
func abortMarker(pid int64, epoch int16, offset int64, leaderEpoch int32, now time.Time) []byte {
	key := kmsg.ControlRecordKey{Type: kmsg.ControlRecordKeyTypeAbort}
	marker := kmsg.EndTxnMarker{}
	rec := kmsg.Record{Key: key.AppendTo(nil), Value: marker.AppendTo(nil)}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	ms := now.UnixMilli()
	b := kmsg.RecordBatch{
		FirstOffset: offset, PartitionLeaderEpoch: leaderEpoch, Magic: 2,
		Attributes:     0x30, // control, transactional
		FirstTimestamp: ms, MaxTimestamp: ms,
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: -1,
		NumRecords: 1, Records: rec.AppendTo(nil),
	}
	enc := b.AppendTo(nil)
	b.Length = int32(len(enc) - 12)
	b.CRC = int32(crc32.Checksum(enc[21:], crc32c))
	return b.AppendTo(nil)
}

// appendIdxEntry appends kfake's index entry of a batch.
func appendIdxEntry(dst []byte, epoch int32, maxTS int64, inTx bool) []byte {
	var e [idxEntrySize]byte
	e[0] = idxVersion
	binary.LittleEndian.PutUint32(e[2:6], uint32(epoch))
	binary.LittleEndian.PutUint64(e[6:14], uint64(maxTS))
	if inTx {
		e[14] = 1
	}
	e[1] = byte(crc32.Checksum(e[2:], crc32c))
	return append(dst, e[:]...)
}

// appendAt cuts path to size (what follows is a torn write kfake would
// drop) and appends b, synced.
func appendAt(path string, size int64, b []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		_, err = f.WriteAt(b, size)
	}
	if err == nil {
		err = f.Sync()
	}
	return cmp.Or(err, f.Close())
}
