package stream

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// useDiskStore makes the engines NewEngine returns until the end of t keep
// their groups in disk stores under t's temporary directory, each with a
// cache of cacheMax decoded groups; they are closed at the end of t.
// Tests that use it must not run in parallel with others.
func useDiskStore(t *testing.T, cacheMax int) {
	t.Helper()
	dir := t.TempDir()
	var mu sync.Mutex
	var open []*diskStore
	prev := defaultStore
	defaultStore = func(o *outState) (GroupStore, error) {
		mu.Lock()
		defer mu.Unlock()
		d := filepath.Join(dir, fmt.Sprint(len(open)))
		s, err := openDiskStore(d, o, cacheMax, 1<<20, func(err error) { t.Errorf("disk store: %v", err) })
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
		return s, nil
	}
	t.Cleanup(func() {
		defaultStore = prev
		for _, s := range open {
			if err := s.Close(); err != nil {
				t.Errorf("close disk store: %v", err)
			}
			if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
				t.Errorf("disk store %s is still there after Close: %v", s.dir, err)
			}
		}
	})
}

// TestDiskStore runs the semantics, oracle and changelog tests with every
// engine on the disk store, with a cache of 2 groups: groups are evicted
// and read back from Pebble all the time, and the timers live in Pebble.
// They must give exactly the memory store's results.
func TestDiskStore(t *testing.T) {
	for name, test := range map[string]func(*testing.T){
		"semantics":               TestSemantics,
		"oracle":                  TestEngineMatchesBatch,
		"oracle with lateness":    TestEngineMatchesBatchWithLateness,
		"changelog restore":       TestChangelogRestore,
		"snapshot restore":        TestSnapshotRestore,
		"snapshot holds state":    TestSnapshotHoldsState,
		"restore jumps":           TestRestoreJumpsToSnapshot,
		"timers bounded":          TestTimersBounded,
		"group keys restore":      TestGroupKeysRestore,
		"restore drops outputs":   TestRestoreDropsUnknownOutputs,
		"restore rejects records": TestRestoreRejectsBadRecords,
	} {
		t.Run(name, func(t *testing.T) {
			useDiskStore(t, 2)
			test(t)
		})
	}
}
