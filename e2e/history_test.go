package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/pulsehq/pulse/internal/checkfor"
)

// TestHistoryTail ingests city readings into a Pulse whose archive
// publishes nothing for an hour, and asks the history API for the range
// that ended a moment ago: every reading, read from the topic, in JSON,
// CSV and Parquet. Restarted with a short roll age, the same query reads
// the same readings from the published files, and paging with a small
// limit gives each exactly once.
func TestHistoryTail(t *testing.T) {
	in := newInstance(t, "--archive-roll-age", "1h")
	p := in.start(t)
	// 3,000 readings over the last ten minutes, 100 ms apart: each has an
	// event time of its own.
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	want := map[string]bool{}
	var body bytes.Buffer
	for i := range 3000 {
		ts := base.Add(time.Duration(i) * 100 * time.Millisecond)
		fmt.Fprintf(&body, `{"sensor_id":"S-%d","zone":"zone-%d","kind":"traffic","ts":%d,"speed_kmh":%d.5}`+"\n", i%40, i%4, ts.UnixMilli(), i%120)
		want[fmt.Sprintf("S-%d|%s|%d.5", i%40, ts.UTC().Format("2006-01-02T15:04:05.000Z07:00"), i%120)] = true
		if i%500 == 499 {
			if code, ir, raw := p.post(body.Bytes(), "application/x-ndjson"); code != 200 || ir.Accepted != 500 {
				t.Fatalf("ingest: %d %s", code, raw)
			}
			body.Reset()
		}
	}
	// The range ends now (to defaults to the request's time).
	q := url.Values{"from": {fmt.Sprint(base.UnixMilli())}, "fields": {"sensor_id,event_time,speed_kmh"}}
	archiveDir := filepath.Join(in.dataDir, "archive")
	checkfor.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		return exactHistory(t, p, q, want)
	})
	if n := archivedFiles(t, archiveDir); n != 0 {
		t.Fatalf("%d archive files with a roll age of an hour: the answer must come from the topic", n)
	}
	for _, format := range []string{"csv", "parquet"} {
		q.Set("format", format)
		if err := exactHistory(t, p, q, want); err != nil {
			t.Fatalf("format=%s from the topic: %v", format, err)
		}
	}
	q.Del("format")

	// SIGTERM publishes what the archiver holds; the next life publishes
	// every 200 ms.
	p.stop()
	in.extra = []string{"--archive-roll-age", "200ms"}
	p = in.start(t)
	checkfor.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		if n := len(readArchive(t, archiveDir)); n != len(want) {
			return fmt.Errorf("%d of %d readings in archive files", n, len(want))
		}
		return nil
	})
	if err := exactHistory(t, p, q, want); err != nil {
		t.Fatalf("from the files: %v", err)
	}
	q.Set("limit", "233")
	for _, format := range []string{"json", "csv", "parquet"} {
		q.Set("format", format)
		if err := exactHistory(t, p, q, want); err != nil {
			t.Fatalf("format=%s in pages of 233 from the files: %v", format, err)
		}
	}
}

// exactHistory pages through the history answer of q and compares it with
// want: every event once, nothing else.
func exactHistory(t *testing.T, p *proc, q url.Values, want map[string]bool) error {
	t.Helper()
	q = maps(q)
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		if pages > 1000 {
			return fmt.Errorf("paging does not end")
		}
		events, next, err := historyPage(p, q)
		if err != nil {
			return err
		}
		for _, e := range events {
			switch {
			case seen[e]:
				return fmt.Errorf("page %d: event %s twice", pages, e)
			case !want[e]:
				return fmt.Errorf("page %d: event %s is not an input", pages, e)
			}
			seen[e] = true
		}
		if next == "" {
			break
		}
		q.Set("after", next)
	}
	if len(seen) != len(want) {
		return fmt.Errorf("history holds %d of %d readings", len(seen), len(want))
	}
	return nil
}

func maps(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// historyPage returns one page's events as "sensor|time|speed" and its
// next token.
func historyPage(p *proc, q url.Values) ([]string, string, error) {
	resp, err := http.Get(p.url("/v1/streams/city/history?" + q.Encode()))
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != 200 {
		return nil, "", fmt.Errorf("history: %d %s", resp.StatusCode, body)
	}
	var out []string
	switch q.Get("format") {
	case "csv":
		recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			return nil, "", err
		}
		if len(recs) == 0 || strings.Join(recs[0], ",") != "sensor_id,event_time,speed_kmh" {
			return nil, "", fmt.Errorf("csv header %v", recs)
		}
		for _, r := range recs[1:] {
			out = append(out, strings.Join(r, "|"))
		}
		return out, resp.Trailer.Get("Pulse-Next"), nil
	case "parquet":
		if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.apache.parquet" {
			return nil, "", fmt.Errorf("parquet answer of Content-Type %q", ct)
		}
		type row struct {
			Sensor string   `parquet:"sensor_id"`
			TS     int64    `parquet:"event_time,timestamp(millisecond)"`
			Speed  *float64 `parquet:"speed_kmh,optional"`
		}
		f, err := parquet.OpenFile(bytes.NewReader(body), int64(len(body)))
		if err != nil {
			return nil, "", fmt.Errorf("the parquet answer does not read back: %w", err)
		}
		if cols := strings.Join(columnNames(f.Schema()), ","); cols != "sensor_id,event_time,speed_kmh" {
			return nil, "", fmt.Errorf("parquet answer columns %s", cols)
		}
		rows, err := parquet.Read[row](bytes.NewReader(body), int64(len(body)))
		if err != nil {
			return nil, "", err
		}
		for _, r := range rows {
			speed := "null"
			if r.Speed != nil {
				speed = fmt.Sprint(*r.Speed)
			}
			out = append(out, fmt.Sprintf("%s|%s|%s", r.Sensor, time.UnixMilli(r.TS).UTC().Format("2006-01-02T15:04:05.000Z07:00"), speed))
		}
		next := resp.Trailer.Get("Pulse-Next")
		if meta, _ := f.Lookup("pulse.next"); meta != next {
			return nil, "", fmt.Errorf("parquet answer: metadata pulse.next %q, trailer %q", meta, next)
		}
		return out, next, nil
	}
	var page struct {
		Events []struct {
			Sensor string  `json:"sensor_id"`
			Time   string  `json:"event_time"`
			Speed  float64 `json:"speed_kmh"`
		} `json:"events"`
		Next string `json:"next"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, "", fmt.Errorf("%w: %s", err, body)
	}
	for _, e := range page.Events {
		out = append(out, fmt.Sprintf("%s|%s|%v", e.Sensor, e.Time, e.Speed))
	}
	return out, page.Next, nil
}

func columnNames(s *parquet.Schema) []string {
	var out []string
	for _, c := range s.Columns() {
		out = append(out, strings.Join(c, "."))
	}
	return out
}

// archivedFiles counts the published files of stream=city under dir.
func archivedFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(dir, "stream=city"), func(path string, d os.DirEntry, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".parquet") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
