package stream

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
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

// oneSeed makes the oracle tests run one random seed (oracleSeeds).
var oneSeed bool

// TestDiskStore runs the semantics, oracle and changelog tests with every
// engine on the disk store, with a cache of 2 groups: groups are evicted
// and read back from Pebble all the time, and the timers live in Pebble.
// They must give exactly the memory store's results. The oracle tests run
// one seed, and the slowest test is left out, unless PULSE_TEST_DISK=all
// (about 3 minutes without -race). Pebble under -race is about ten times
// slower: with it, only the semantics, oracle and a few restore tests
// run (the restore at every prefix alone takes over 3 minutes); run the
// others without -race.
func TestDiskStore(t *testing.T) {
	all := os.Getenv("PULSE_TEST_DISK") == "all"
	slow := map[string]bool{"snapshot restore": true}
	if raceOn {
		slow = map[string]bool{"snapshot restore": true, "oracle with lateness": true, "timers bounded": true,
			"changelog restore": true, "snapshot holds state": true, "restore drops outputs": true, "cleaned changelog": true}
	}
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
		"cleaned changelog":       TestCleanedChangelogRestore,
		"cleaning rewrites stale": TestCleaningRewritesOnlyStale,
	} {
		t.Run(name, func(t *testing.T) {
			if !all && slow[name] {
				t.Skip("slow on the disk store; PULSE_TEST_DISK=all runs it")
			}
			useDiskStore(t, 2)
			oneSeed = !all
			defer func() { oneSeed = false }()
			test(t)
		})
	}
}

// diskMaker makes disk stores under t's temporary directory with a cache
// of cacheMax groups; failures fail t.
func diskMaker(t *testing.T, cacheMax int) storeMaker {
	dir := t.TempDir()
	n := 0
	return func(o *outState) (GroupStore, error) {
		n++
		return openDiskStore(filepath.Join(dir, fmt.Sprint(n)), o, cacheMax, 1<<20, func(err error) { t.Errorf("disk store: %v", err) })
	}
}

// stateRun feeds 3,000 sensors of the city pipeline's sensor output, each
// reporting every 20 s of event time for 3 minutes, to engine e as a
// window task does: it advances every 500 events and writes its changelog
// then. It returns, per advance, the normalized results and the changelog
// as a restore reads it (compacted: the latest value of each key) after
// the flush; then the snapshot by key and the partial
// results. (Which unchanged groups a flush's cleaning rewrites depends on
// the order the store sweeps them in: a rewrite changes no value.)
func stateRun(t *testing.T, e *Engine) (results [][]Result, changes []map[string]string, snap map[string]string, partials []Result) {
	t.Helper()
	const keys = 3000
	plan := e.plan
	feed := newSensorFeed(NewDecoder(plan))
	e.EnableChangelog()
	byKey := func(cs []Change) map[string]string {
		m := map[string]string{}
		for _, c := range cs {
			m[string(c.Key)] = string(c.Value)
		}
		return m
	}
	table := map[string]string{}
	n := 0
	for round := range 9 {
		for k := range keys {
			ts := oracleBase + int64(round)*20_000 + int64(k)*20_000/keys
			if e.Add(int32(k%4), feed.reading(k, ts), ts) != 0 {
				t.Fatalf("event %d is late", n)
			}
			if n++; n%500 == 0 {
				results = append(results, normalize(plan, e.Advance(ts, nil, 0)))
				for _, c := range appendChanges(e, nil) {
					if c.Value == nil {
						delete(table, string(c.Key))
					} else {
						table[string(c.Key)] = string(c.Value)
					}
				}
				changes = append(changes, maps.Clone(table))
			}
		}
	}
	return results, changes, byKey(appendSnapshot(e, nil)), normalize(plan, e.Partials(0, nil))
}

// TestStateLargerThanCache: 3,000 groups in a disk store that keeps 50 of
// them decoded (and, auto, in memory until 1,000 groups, then on disk)
// give the results, changelog records, snapshot and partial results of
// the memory store, advance by advance.
func TestStateLargerThanCache(t *testing.T) {
	plan := sensorPlan(t)
	mem, err := newEngineWith(plan, NewDecoder(plan), defaultStore)
	if err != nil {
		t.Fatal(err)
	}
	wantRes, wantCh, wantSnap, wantPart := stateRun(t, mem)
	if len(wantRes) == 0 || len(wantPart) == 0 || len(wantSnap) < 3000 {
		t.Fatalf("the run has %d advances, %d partial results, a snapshot of %d records", len(wantRes), len(wantPart), len(wantSnap))
	}
	fired := 0
	for _, rs := range wantRes {
		fired += len(rs)
	}
	if fired < 2*3000 {
		t.Fatalf("%d results fired, want every sensor's first two minutes", fired)
	}
	for _, store := range []string{"disk", "auto"} {
		t.Run(store, func(t *testing.T) {
			e, err := newEngineWith(plan, NewDecoder(plan), diskMaker(t, 50))
			if store == "auto" {
				e, err = newEngineWith(plan, NewDecoder(plan), defaultStore)
				e.spill, e.spillAt = diskMaker(t, 50), 1000
			}
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			res, ch, snap, part := stateRun(t, e)
			if _, ok := e.outs[0].keys.(*diskStore); !ok {
				t.Fatalf("the state is in a %T, want a disk store", e.outs[0].keys)
			}
			for i := range wantRes {
				if !reflect.DeepEqual(res[i], wantRes[i]) {
					t.Fatalf("advance %d: %d results, want %d (first: %+v, want %+v)", i, len(res[i]), len(wantRes[i]), first(res[i]), first(wantRes[i]))
				}
				if !maps.Equal(ch[i], wantCh[i]) {
					t.Fatalf("flush %d: the changelog's %d records differ from the memory store's %d", i, len(ch[i]), len(wantCh[i]))
				}
			}
			if !maps.Equal(snap, wantSnap) {
				t.Fatalf("snapshot of %d records differs from the memory store's %d", len(snap), len(wantSnap))
			}
			if !reflect.DeepEqual(part, wantPart) {
				t.Fatalf("%d partial results differ from the memory store's %d", len(part), len(wantPart))
			}
			if e.Groups() != mem.Groups() || e.OpenWindows() != mem.OpenWindows() {
				t.Fatalf("%d groups, %d open windows; want %d, %d", e.Groups(), e.OpenWindows(), mem.Groups(), mem.OpenWindows())
			}
		})
	}
}

func first(rs []Result) any {
	if len(rs) == 0 {
		return nil
	}
	return rs[0]
}

// stagesState is the state configuration of stagesCountOnce's stages.
var stagesState StateConfig

// TestStagesStateOnDisk runs the window stage with its state on disk, a
// cache of 10 groups per task for 1,000 sensors, through an aborted
// transaction (every task is dropped and restored from its changelog):
// every event is counted once in the final results, and the stores of the
// dropped tasks are gone from the state directory.
func TestStagesStateOnDisk(t *testing.T) {
	dir := t.TempDir()
	stagesState = StateConfig{Store: StateDisk, Dir: dir, Cache: 10}
	defer func() { stagesState = StateConfig{} }()
	stagesCountOnce(t, "windows", kerr.InvalidRecord.Code)
	left, err := os.ReadDir(filepath.Join(dir, "city"))
	if err != nil {
		t.Fatal(err)
	}
	// 2 outputs of 4 partitions: at most 8 tasks hold a store.
	if len(left) == 0 || len(left) > 8 {
		t.Fatalf("%d stores in the state directory, want those of the live tasks, 1 to 8", len(left))
	}
}
