package broker

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/bus"
)

// TestCrashOpenTransactionAborted leaves a transaction open, takes the
// data dir as a kill -9 leaves it (kfake writes a batch to its file
// before answering, and the page cache survives the kill), and restarts
// on it. The same transactional producer then commits a transaction: a
// read_committed consumer must get its records and read up to the end
// of the partition. Without an abort marker for the crashed transaction
// it skips the producer's later batches of the same fetch (the new
// transaction and its commit marker) and never reaches the end.
func TestCrashOpenTransactionAborted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before int                            // records of the open transaction
		tear   func(t *testing.T, dir string) // what else the kill cut short
	}{
		{"records written", 2, func(*testing.T, string) {}},
		// kfake reads a batch's transactional flag from its index
		// entry: without it the open transaction's one batch would
		// count as committed.
		{"index entry not written", 1, dropLastIndexEntry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dir, crashed := filepath.Join(t.TempDir(), "run"), filepath.Join(t.TempDir(), "crashed")
			b := start(t, dir)
			cl, err := bus.NewClient([]string{b.Addr()}, "test")
			if err != nil {
				t.Fatal(err)
			}
			if err := bus.EnsureTopics(ctx, cl, 1, "out"); err != nil {
				t.Fatal(err)
			}
			cl.Close()
			open := produceTxn(ctx, t, b.Addr(), "before", tc.before, false)
			copyDir(t, dir, crashed) // before the client could end it
			open.Close()
			b.Close()
			tc.tear(t, crashed)

			b = start(t, crashed)
			defer b.Close()
			produceTxn(ctx, t, b.Addr(), "after", 2, true).Close()
			got := readCommitted(ctx, t, b.Addr(), "out")
			if want := []string{"after-0", "after-1"}; !slices.Equal(got, want) {
				t.Fatalf("read_committed after the restart got %q, want %q", got, want)
			}
		})
	}
}

// produceTxn produces n records with prefix in a transaction of the
// transactional id "stage", and commits it or leaves it open; the caller
// closes the client it returns.
func produceTxn(ctx context.Context, t *testing.T, addr, prefix string, n int, commit bool) *kgo.Client {
	t.Helper()
	cl, err := bus.NewClient([]string{addr}, "test", kgo.TransactionalID("stage"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := &kgo.Record{Topic: "out", Partition: 0, Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if commit {
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	return cl
}

// readCommitted reads partition 0 of topic up to its end offset as a
// read_committed consumer keeping control records (as Pulse's changelog
// restore does) and returns the values of the data records.
func readCommitted(ctx context.Context, t *testing.T, addr, topic string) []string {
	t.Helper()
	adm, err := bus.NewClient([]string{addr}, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	cl, err := bus.NewClient([]string{addr}, "test",
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var got []string
	next := int64(0)
	for next < end.Offset {
		fs := cl.PollFetches(pctx)
		if pctx.Err() != nil {
			t.Fatalf("read_committed consumer stuck at offset %d of %d, having read %q", next, end.Offset, got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			if !r.Attrs.IsControl() {
				got = append(got, string(r.Value))
			}
		})
	}
	return got
}

// dropLastIndexEntry cuts the last entry off the index of out's segment:
// a kill between kfake's write of a batch and of its index entry.
func dropLastIndexEntry(t *testing.T, dir string) {
	t.Helper()
	idx := filepath.Join(dir, "partitions", "out-0", "0.idx")
	st, err := os.Stat(idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(idx, st.Size()-idxEntrySize); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the tree at src to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
