package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/tmpfs"
)

// TestDiskFull puts --data-dir on a 64 MiB tmpfs and fills it three times
// with a filler file while HTTP load runs: Pulse must refuse ingest with
// 507 before the embedded broker meets ENOSPC, say why in /readyz, pause
// its pipelines, and resume by itself once the filler is deleted. The
// first time the disk stays full across the broker's 60 s maintenance
// pass. At the end, after a restart, every acknowledged reading is counted
// exactly once (the final results equal a batch computation over them).
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a tmpfs three times, holding it full for a minute")
	}
	mnt := tmpfs.Mount(t, "64m")
	const reserve = 8 << 20
	in := newInstance(t, "--partitions", "2", "--disk-reserve", "8MiB")
	in.dataDir = filepath.Join(mnt, "data")
	in.bin = pulseFastBin
	p := in.start(t)

	feed := &airFeed{prefix: "df", sensors: 500, zones: 10, base: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC),
		step: time.Millisecond, rng: rand.New(rand.NewPCG(9, 9)), want: map[string]*aggregate{}}
	next := 0
	acked := 0
	for cycle := 0; cycle < 3; cycle++ {
		filler := filepath.Join(mnt, "filler")
		// Leave 6 MiB above the reserve: the load fills that.
		fillTo(t, filler, freeBytes(t, mnt)-reserve-6<<20)
		refused := 0
		for refused == 0 {
			code, n, hdr := postReadings(t, p, feed, &next, 1000)
			switch code {
			case http.StatusOK:
				acked += n
			case http.StatusInsufficientStorage:
				refused++
				if hdr.Get("Retry-After") == "" {
					t.Fatal("507 without Retry-After")
				}
			default:
				t.Fatalf("cycle %d: ingest answered %d before the disk guard refused it", cycle, code)
			}
		}
		// Full: not ready, naming the disk; ingest keeps refusing.
		hold := 5 * time.Second
		if cycle == 0 {
			hold = 65 * time.Second // across the broker's retention pass
		}
		end := time.Now().Add(hold)
		for time.Now().Before(end) {
			if code, _, _ := postReadings(t, p, feed, &next, 1000); code != http.StatusInsufficientStorage {
				t.Fatalf("cycle %d: ingest answered %d on a full disk, want 507", cycle, code)
			}
			code, body := get(t, p.url("/readyz"))
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "disk") {
				t.Fatalf("cycle %d: /readyz on a full disk: %d %s", cycle, code, body)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
			if code, body := get(t, p.url("/readyz")); code != http.StatusOK {
				return fmt.Errorf("not ready after the disk was freed: %d %s", code, body)
			}
			return nil
		})
		t.Logf("cycle %d: %d readings acknowledged so far", cycle, acked)
	}
	// One more batch after the last cycle, then the sentinel; stop and
	// start again, so that the stored results are those after a restart.
	for code := 0; code != http.StatusOK; {
		var n int
		if code, n, _ = postReadings(t, p, feed, &next, 1000); code == http.StatusOK {
			acked += n
		}
	}
	end := feed.maxTS.Truncate(time.Minute).Add(time.Minute)
	p.mustPost([]byte(sentinel("df", end.Add(time.Minute)).json()))
	p.stop()
	p = in.start(t)
	rows := p.waitResults("output=sensor_1m&to="+end.Format(time.RFC3339)+"&limit=1000000", sensorRows(feed.want))
	compare(t, rows, onlyOutput(feed.want, "sensor_1m"))
	if strings.Contains(p.log.String(), "no space left") {
		t.Errorf("the broker met ENOSPC:\n%s", p.log.String())
	}
	t.Logf("%d readings acknowledged, %d results", acked, len(rows))
	p.stop()
}

// postReadings posts the next n readings of feed; the accepted ones join
// its oracle. It returns the status, how many were accepted, and the
// response headers.
func postReadings(t *testing.T, p *proc, f *airFeed, next *int, n int) (int, int, http.Header) {
	t.Helper()
	var body []byte
	var rs []reading
	for i := *next; i < *next+n; i++ {
		r := reading{
			sensor: f.prefix + "-" + strconv.Itoa(i%f.sensors), zone: f.prefix + "-zone-" + strconv.Itoa(i%f.sensors%f.zones), kind: "air",
			ts:      f.base.Add(time.Duration(i) * f.step),
			metrics: map[string]float64{"pm25": float64(f.rng.IntN(5000)) / 10},
		}
		rs = append(rs, r)
		body = append(append(body, r.json()...), '\n')
	}
	resp, err := http.Post(p.url("/v1/streams/city/events"), "application/x-ndjson", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, 0, resp.Header
	}
	*next += n
	for _, r := range rs {
		addOracle(f.want, r)
		if r.ts.After(f.maxTS) {
			f.maxTS = r.ts
		}
	}
	return resp.StatusCode, n, resp.Header
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// fillTo writes a file of n bytes (tmpfs keeps every page written).
func fillTo(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for n > 0 {
		w := min(n, int64(len(chunk)))
		if _, err := f.Write(chunk[:w]); err != nil {
			t.Fatalf("write filler: %v", err)
		}
		n -= w
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func onlyOutput(want map[string]*aggregate, output string) map[string]*aggregate {
	out := map[string]*aggregate{}
	for k, v := range want {
		if strings.HasPrefix(k, output+"|") {
			out[k] = v
		}
	}
	return out
}

func sensorRows(want map[string]*aggregate) int { return len(onlyOutput(want, "sensor_1m")) }
