package stream

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// sensorPlan is the city pipeline's per-sensor output alone, as a window
// task of it runs it.
func sensorPlan(tb testing.TB) *pipeline.Plan {
	plan := *testPlan(tb, "")
	plan.Outputs = plan.Outputs[:1]
	return &plan
}

// sensorFeed makes traffic readings of sensors (speed, vehicle count and
// occupancy, as the city simulator sends) in one reused record; the
// sensor id points into a reused buffer, as the window stage's records
// do (the engine copies group keys).
type sensorFeed struct {
	zones                        []string
	id                           []byte
	r                            Record
	sensor, zone, speed, veh, oc int
}

func newSensorFeed(dec *Decoder) *sensorFeed {
	// Slot adds the fields a plan does not read: ask before sizing Vals.
	f := &sensorFeed{sensor: dec.Slot("sensor_id"), zone: dec.Slot("zone"),
		speed: dec.Slot("speed_kmh"), veh: dec.Slot("vehicle_count"), oc: dec.Slot("occupancy")}
	f.r.Vals = make([]event.Value, dec.Slots())
	for i := range 100 {
		f.zones = append(f.zones, fmt.Sprintf("zone-%02d", i))
	}
	return f
}

// reading returns the reading of sensor i at ts.
func (f *sensorFeed) reading(i int, ts int64) *Record {
	f.r.TS = ts
	f.id = strconv.AppendInt(append(f.id[:0], "sensor-"...), int64(i), 10)
	f.r.Vals[f.sensor] = event.StringValue(unsafe.String(unsafe.SliceData(f.id), len(f.id)))
	f.r.Vals[f.zone] = event.StringValue(f.zones[i%100])
	f.r.Vals[f.speed] = event.NumberValue(float64(i % 120))
	f.r.Vals[f.veh] = event.NumberValue(float64(i % 17))
	f.r.Vals[f.oc] = event.NumberValue(float64(i % 100))
	return &f.r
}

// BenchmarkGroupMemory reports the heap one group of the city pipeline's
// sensor output holds (one open one-minute window with one traffic
// reading), over 100,000 groups added through the engine: in memory, and
// on disk with a cache of 10,000 groups.
func BenchmarkGroupMemory(b *testing.B) {
	const groups = 100_000
	for _, store := range []string{"memory", "disk"} {
		b.Run(store, func(b *testing.B) {
			for range b.N {
				plan := sensorPlan(b)
				dec := NewDecoder(plan)
				feed := newSensorFeed(dec)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				mk := defaultStore
				if store == "disk" {
					dir := b.TempDir()
					mk = func(o *outState) (GroupStore, error) {
						return openDiskStore(filepath.Join(dir, "s"), o, 10_000, 8<<20, func(err error) { b.Error(err) })
					}
				}
				e, err := newEngineWith(plan, dec, mk)
				if err != nil {
					b.Fatal(err)
				}
				for i := range groups {
					if e.Add(0, feed.reading(i, oracleBase), 0) != 0 {
						b.Fatal("late")
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/groups, "bytes/group")
				b.ReportMetric(float64(after.HeapObjects-before.HeapObjects)/groups, "objects/group")
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStateScale adds events for PULSE_SCALE_KEYS keys (default
// 100,000) to one engine with the store PULSE_SCALE_STORE (disk, the
// default, or memory) and a cache of PULSE_SCALE_CACHE groups (default
// 100,000), as one window task would: every key reports every 20 s of
// event time, PULSE_SCALE_ROUNDS times (default 4, so that windows fire and
// are dropped), over 4 source partitions; the engine advances every
// 10,000 events and writes its changelog every 200,000, as a task does at
// its markers and checkpoints. PULSE_SCALE_PLAN=small runs the four
// aggregates of benchPipeline instead of the city sensor output's 45. It
// reports events/s (and per CPU second, all threads), the largest heap
// seen at a checkpoint, the largest live heap after a collection every
// million events, and the process's peak RSS (VmHWM). Every key's window
// ends at the same time, so one Advance returns a result per key: that
// burst, not the store, sets the peak.
//
//	PULSE_SCALE_KEYS=1000000 go test -run XXX -bench StateScale -benchtime 1x ./internal/stream/
func BenchmarkStateScale(b *testing.B) {
	keys := envInt(b, "PULSE_SCALE_KEYS", 100_000)
	cache := envInt(b, "PULSE_SCALE_CACHE", 100_000)
	rounds := envInt(b, "PULSE_SCALE_ROUNDS", 4)
	store := os.Getenv("PULSE_SCALE_STORE")
	plan := sensorPlan(b)
	if os.Getenv("PULSE_SCALE_PLAN") == "small" {
		plan = testPlan(b, benchPipeline)
	}
	dec := NewDecoder(plan)
	feed := newSensorFeed(dec)
	for range b.N {
		mk := defaultStore
		if store != "memory" {
			dir := b.TempDir()
			mk = func(o *outState) (GroupStore, error) {
				return openDiskStore(filepath.Join(dir, "s"), o, cache, 64<<20, func(err error) { b.Error(err) })
			}
		}
		e, err := newEngineWith(plan, dec, mk)
		if err != nil {
			b.Fatal(err)
		}
		e.EnableChangelog()
		var results []Result
		var changes []Change
		var peak, live uint64
		var ms runtime.MemStats
		step := float64(20_000) / float64(keys) // ms of event time per event
		n, fired, written := 0, 0, 0
		start, cpu0 := time.Now(), cpuTime(b)
		for round := range rounds {
			for k := range keys {
				ts := oracleBase + int64(float64(round*keys+k)*step)
				if e.Add(int32(n%4), feed.reading(k, ts), ts) != 0 {
					b.Fatalf("event %d is late", n)
				}
				n++
				if n%10_000 == 0 {
					results = e.Advance(ts, results[:0], 0)
					fired += len(results)
					clear(results) // a task produces them, then forgets them
				}
				if n%200_000 == 0 {
					changes = appendChanges(e, changes[:0])
					written += len(changes)
					clear(changes)
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapAlloc)
					if n%1_000_000 == 0 {
						// What stays live between checkpoints: the
						// state, not the burst of a boundary's results.
						runtime.GC()
						runtime.ReadMemStats(&ms)
						live = max(live, ms.HeapAlloc)
					}
				}
			}
		}
		elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
		b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(n)/cpu.Seconds(), "events/cpu-s")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(live)/(1<<20), "live-heap-MiB")
		b.ReportMetric(float64(vmHWM(b))/(1<<10), "VmHWM-MiB")
		b.ReportMetric(float64(fired), "results")
		b.ReportMetric(float64(e.Groups()), "groups")
		b.Logf("%d keys, %d events in %s (%s of CPU, every thread); %d results, %d changelog records; store %q, cache %d",
			keys, n, elapsed.Round(time.Millisecond), cpu.Round(time.Millisecond), fired, written, cmp.Or(store, "disk"), cache)
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
		debug.FreeOSMemory()
	}
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// cpuTime returns the user and system CPU time the process used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vmHWM returns the process's peak resident set in KiB.
func vmHWM(b *testing.B) int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				b.Fatalf("VmHWM %q: %v", rest, err)
			}
			return n
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
