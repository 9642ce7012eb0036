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

// tail is what recovery needs of a partition's last segment with
// batches: where its valid batches end, its index, the index entries the
// crash left out and its last batch.
type tail struct {
	dat, idx string
	valid    int64 // bytes of whole, valid batches; kfake drops the rest
	idxLen   int   // whole index entries kept
	pad      []byte
	last     kmsg.RecordBatch // Records cleared
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
		return fmt.Errorf("embedded broker: read the partitions of %s: %w", dataDir, err)
	}
	for _, p := range parts {
		if !p.IsDir() {
			continue
		}
		dir := filepath.Join(dataDir, "partitions", p.Name())
		n, err := abortOpenTxns(dir, time.Now())
		if err != nil {
			return fmt.Errorf("embedded broker: abort the transactions a crash left open in %s (check that the data dir is readable and writable): %w", dir, err)
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
	open := map[int64]int16{} // producer id → epoch of its open transaction
	t, err := replay(dir, open)
	if err != nil || t == nil || (len(open) == 0 && len(t.pad) == 0) {
		return 0, err
	}
	pids := make([]int64, 0, len(open))
	for pid := range open {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	next := t.last.FirstOffset + int64(t.last.LastOffsetDelta) + 1
	var dat []byte
	idx := t.pad
	for _, pid := range pids {
		dat = append(dat, abortMarker(pid, open[pid], next, t.last.PartitionLeaderEpoch, now)...)
		idx = appendIdxEntry(idx, t.last.PartitionLeaderEpoch, now.UnixMilli(), false)
		next++
	}
	if len(dat) > 0 {
		if err := appendAt(t.dat, t.valid, dat); err != nil {
			return 0, err
		}
	}
	if err := appendAt(t.idx, int64(t.idxLen*idxEntrySize), idx); err != nil {
		return 0, err
	}
	return len(pids), nil
}

// replay reads the segments of a partition directory in offset order as
// kfake's full replay (loadPartitionFullReplay) does, leaving in open the
// producers whose transaction is open at the end: from its first
// transactional data batch on, with no control batch of that producer
// after it. It returns the tail of the partition, nil if it has no batch.
func replay(dir string, open map[int64]int16) (*tail, error) {
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
	var last *tail
	for _, base := range bases {
		name := filepath.Join(dir, strconv.FormatInt(base, 10))
		t := &tail{dat: name + ".dat", idx: name + ".idx"}
		raw, err := os.ReadFile(t.dat)
		if err != nil {
			return nil, err
		}
		idxRaw, _ := os.ReadFile(t.idx) // missing: every entry is
		n := 0
		for pos := 0; pos+12 <= len(raw); n++ {
			size := 12 + int(int32(binary.BigEndian.Uint32(raw[pos+8:pos+12])))
			if size < 21 || size > 12+1<<30 || pos+size > len(raw) {
				break
			}
			b := raw[pos : pos+size]
			var rb kmsg.RecordBatch
			if binary.BigEndian.Uint32(b[17:21]) != crc32.Checksum(b[21:], crc32c) || rb.ReadFrom(b) != nil {
				break
			}
			inTx, known := idxInTx(idxRaw, n)
			if !known {
				// Lost with the crash: kfake writes the entry right
				// after the batch.
				inTx = rb.Attributes&0x10 != 0 && rb.Attributes&0x20 == 0
				t.pad = appendIdxEntry(t.pad, rb.PartitionLeaderEpoch, rb.MaxTimestamp, inTx)
			}
			switch {
			case rb.Attributes&0x20 != 0:
				delete(open, rb.ProducerID)
			case inTx:
				open[rb.ProducerID] = rb.ProducerEpoch
			}
			rb.Records = nil
			t.last = rb
			pos += size
			t.valid = int64(pos)
		}
		if n > 0 {
			t.idxLen = min(len(idxRaw)/idxEntrySize, n)
			last = t
		}
	}
	return last, nil
}

// idxInTx returns batch n's transactional flag as kfake reads it from
// the index (false for a corrupt entry), and whether the index has an
// entry for it.
func idxInTx(idxRaw []byte, n int) (inTx, known bool) {
	if (n+1)*idxEntrySize > len(idxRaw) {
		return false, false
	}
	e := idxRaw[n*idxEntrySize : (n+1)*idxEntrySize]
	return byte(crc32.Checksum(e[2:], crc32c)) == e[1] && e[14]&1 != 0, true
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
