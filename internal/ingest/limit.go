package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

// eventOverhead is the memory ingest holds per event of a request besides
// its bytes in the body: the record, the split item and franz-go's
// buffered copy of the record pointer and promise.
const eventOverhead = int64(unsafe.Sizeof(kgo.Record{})+unsafe.Sizeof(item{})) + 64

// inflight bounds the bytes held by requests in flight: their bodies from
// before they are read until every record is acknowledged or failed, plus
// eventOverhead per event.
type inflight struct {
	max  int64 // 0: unbounded
	used atomic.Int64
	// gauge, when not nil, follows used.
	gauge func(float64)
}

// acquire reserves n more bytes for a request that holds held already. It
// fails when that would pass max, unless no other request holds any: a
// request alone always goes through, so a limit below --max-body cannot
// stall ingest.
func (l *inflight) acquire(n, held int64) bool {
	if n <= 0 {
		return true
	}
	for {
		u := l.used.Load()
		if l.max > 0 && u > held && u+n > l.max {
			return false
		}
		if l.used.CompareAndSwap(u, u+n) {
			if l.gauge != nil {
				l.gauge(float64(n))
			}
			return true
		}
	}
}

func (l *inflight) release(n int64) {
	if n <= 0 {
		return
	}
	l.used.Add(-n)
	if l.gauge != nil {
		l.gauge(-float64(n))
	}
}

// refusal is the answer to a request that does not fit.
func (l *inflight) refusal() *Refusal {
	return &Refusal{Code: http.StatusServiceUnavailable, RetryAfter: time.Second,
		Reason: fmt.Sprintf("overloaded: requests in flight hold %d bytes, at the --max-inflight-bytes limit of %d; send again after the Retry-After delay, or send fewer requests at once", l.used.Load(), l.max)}
}

// DefaultMaxInflight is the default in-flight limit: 1/32 of the memory
// Pulse may use (the least of physical memory, the cgroup's memory limit
// and GOMEMLIMIT), at least 32 MiB and at most 128 MiB. Ingest's peak
// memory is about 6 times its in-flight bytes (the records, the
// producer's batches, the embedded broker's copy, and garbage not yet
// collected at GOGC=200; docs/benchmarks.md measures it), so the limit is
// kept well below the memory. A few MiB in flight carry 300,000 events/s.
func DefaultMaxInflight() int64 {
	mem := AvailableMemory()
	return min(max(mem/32, 32<<20), 128<<20)
}

// AvailableMemory is the least of physical memory, the cgroup (v2 or v1)
// memory limit and GOMEMLIMIT, in bytes; math.MaxInt64 if none is known.
func AvailableMemory() int64 {
	mem := int64(math.MaxInt64)
	if v := meminfoTotal("/proc/meminfo"); v > 0 {
		mem = v
	}
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if v := cgroupLimit(path); v > 0 {
			mem = min(mem, v)
		}
	}
	if lim := debug.SetMemoryLimit(-1); lim > 0 {
		mem = min(mem, lim)
	}
	return mem
}

// meminfoTotal reads MemTotal from a /proc/meminfo file; 0 if unknown.
func meminfoTotal(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// cgroupLimit reads a cgroup memory limit file; 0 if there is none
// ("max", absent, or v1's "unlimited" page-aligned maximum).
func cgroupLimit(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v <= 0 || v >= math.MaxInt64/2 {
		return 0
	}
	return v
}

// reservingReader reserves the bytes read beyond its reservation, in
// steps of reserveStep, and fails with errOverloaded when that does not fit.
type reservingReader struct {
	r    io.Reader
	res  *reservation
	read int64
}

const reserveStep = 256 << 10

func (rr *reservingReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	rr.read += int64(n)
	if over := rr.read - rr.res.n; over > 0 && !rr.res.add(max(over, reserveStep)) {
		return n, errOverloaded
	}
	return n, err
}

// reservation is what one request holds of the in-flight limit.
type reservation struct {
	lim *inflight
	n   int64
}

func (r *reservation) add(n int64) bool {
	if !r.lim.acquire(n, r.n) {
		return false
	}
	r.n += n
	return true
}

func (r *reservation) done() {
	r.lim.release(r.n)
	r.n = 0
}
