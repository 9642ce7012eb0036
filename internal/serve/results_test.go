package serve_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/serve"
	"github.com/pulsehq/pulse/internal/sink"
	"github.com/pulsehq/pulse/internal/stream"
)

const webPipeline = `name: web
source: {topic: clicks, key: user, time: {field: at}}
outputs:
  - name: pages
    group_by: [site, page]
    window: {tumbling: 1m}
    aggregates:
      views: count()
      first_user: first(user)
      mean_ms: avg(ms)
  - name: sites
    group_by: [site]
    window: {tumbling: 1m}
    aggregates:
      views: count()
      total_ms: sum(ms)
`

var w0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

func webAPI(t *testing.T) (string, *sink.SQLite) {
	t.Helper()
	plan, err := pipeline.Parse("web.yaml", []byte(webPipeline))
	if err != nil {
		t.Fatal(err)
	}
	base, store, _ := startAPIWith(t, plan)
	return base, store
}

// webRow is a result of the web pipeline with its aggregates as JSON.
type webRow struct {
	r    stream.Result
	aggs string
}

// store writes rows of the web pipeline, each row's aggregates read by
// its output's schema.
func store(t *testing.T, st *sink.SQLite, rows ...webRow) {
	t.Helper()
	plan, err := pipeline.Parse("web.yaml", []byte(webPipeline))
	if err != nil {
		t.Fatal(err)
	}
	var rs []stream.Result
	for _, w := range rows {
		if err := stream.NewRecordDecoder(schemaOf(t, plan, w.r.Output)).DecodeStored([]byte(w.aggs), &w.r); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, w.r)
	}
	commitResults(t, st, plan, rs...)
}

func pageRow(site, page string, minute int, aggs string) webRow {
	start := w0.Add(time.Duration(minute) * time.Minute)
	return webRow{stream.Result{Output: "pages", GroupBy: []string{"site", "page"}, Key: []string{site, page},
		Start: start.UnixMilli(), End: start.Add(time.Minute).UnixMilli(), Final: true}, aggs}
}

func siteRow(site string, minute int, aggs string) webRow {
	w := pageRow(site, "", minute, aggs)
	w.r.Output, w.r.GroupBy, w.r.Key = "sites", []string{"site"}, []string{site}
	return w
}

func readCSV(t *testing.T, body string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, body)
	}
	return recs
}

// TestResultsCSV: columns come from the pipeline file (group fields,
// window bounds, aggregates in file order) whatever the rows hold;
// strings are plain; formulas are neutralised, numbers are not.
func TestResultsCSV(t *testing.T) {
	base, st := webAPI(t)
	store(t, st,
		pageRow("=HYPERLINK(\"x\")", "/home", 0, `{"mean_ms":-3.5,"first_user":"@bob","views":1404214}`),
		pageRow("a", "-1", 1, `{"views":2,"first_user":"+1-2"}`),
		siteRow("a", 0, `{"total_ms":12.5,"views":3}`),
	)
	wantHeader := []string{"output", "site", "page", "window_start", "window_end", "views", "first_user", "mean_ms", "total_ms"}
	for _, q := range []string{"", "&output=pages,sites", "&output=sites,pages"} {
		_, body := get(t, base+"/v1/pipelines/web/results?format=csv"+q)
		recs := readCSV(t, body)
		if !slices.Equal(recs[0], wantHeader) {
			t.Errorf("%q: header %q, want %q", q, recs[0], wantHeader)
		}
	}
	_, body := get(t, base+"/v1/pipelines/web/results?format=csv&output=pages")
	recs := readCSV(t, body)
	want := [][]string{
		{"output", "site", "page", "window_start", "window_end", "views", "first_user", "mean_ms"},
		{"pages", "'=HYPERLINK(\"x\")", "/home", "2026-05-01T10:00:00Z", "2026-05-01T10:01:00Z", "1404214", "'@bob", "-3.5"},
		{"pages", "a", "-1", "2026-05-01T10:01:00Z", "2026-05-01T10:02:00Z", "2", "'+1-2", ""},
	}
	if !slices.EqualFunc(recs, want, slices.Equal) {
		t.Errorf("csv\n%q\nwant\n%q", recs, want)
	}
	_, body = get(t, base+"/v1/pipelines/web/results?format=csv&output=sites")
	if recs := readCSV(t, body); !slices.Equal(recs[0], []string{"output", "site", "window_start", "window_end", "views", "total_ms"}) ||
		!slices.Equal(recs[1], []string{"sites", "a", "2026-05-01T10:00:00Z", "2026-05-01T10:01:00Z", "3", "12.5"}) {
		t.Errorf("sites csv %q", recs)
	}
}

// TestResultsKeyFilter: one key= per group field, each value whole, so
// values with commas (or the old separator byte) can be asked for.
func TestResultsKeyFilter(t *testing.T) {
	base, st := webAPI(t)
	store(t, st,
		pageRow("a,b", "c", 0, `{"views":1}`),
		pageRow("a", "b,c", 0, `{"views":2}`),
		pageRow("x\x1fy", "z", 0, `{"views":3}`),
		siteRow("a,b", 0, `{"views":4}`),
	)
	for _, c := range []struct {
		query string
		views []float64
	}{
		{"output=pages&key=a,b&key=c", []float64{1}},
		{"output=pages&key=a&key=b,c", []float64{2}},
		{"output=pages&key=" + url.QueryEscape("x\x1fy") + "&key=z", []float64{3}},
		{"key=a,b", []float64{4}},
		{"output=sites&key=a", nil},
	} {
		code, body := get(t, base+"/v1/pipelines/web/results?"+c.query)
		var out struct {
			Results []struct {
				Views float64 `json:"views"`
			} `json:"results"`
		}
		if code != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("%s: %d %s", c.query, code, body)
		}
		var views []float64
		for _, r := range out.Results {
			views = append(views, r.Views)
		}
		if !slices.Equal(views, c.views) {
			t.Errorf("%s: views %v, want %v: %s", c.query, views, c.views, body)
		}
	}
	code, body := get(t, base+"/v1/pipelines/web/results?output=sites&key=a&key=b")
	if code != 400 || !strings.Contains(body, "sites: key=<site>") {
		t.Errorf("two values for one field: %d %s", code, body)
	}
}

// TestResultsPaging: a limit above the maximum is capped, an answer cut
// by the limit says so with a next cursor (field and Link header), and
// following the cursors returns every row once.
func TestResultsPaging(t *testing.T) {
	base, st := webAPI(t)
	var rows []webRow
	for m := range 3 {
		for i := range 5 {
			rows = append(rows, pageRow("s", fmt.Sprintf("/p%d", i), m, fmt.Sprintf(`{"views":%d}`, m*10+i)))
		}
	}
	store(t, st, rows...)
	type page struct {
		Results []struct {
			Views int `json:"views"`
		} `json:"results"`
		Next *string `json:"next"`
	}
	fetch := func(query string) (page, http.Header) {
		t.Helper()
		resp, err := http.Get(base + "/v1/pipelines/web/results?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p page
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", query, resp.StatusCode, err)
		}
		return p, resp.Header
	}
	all, h := fetch("limit=1000000")
	if len(all.Results) != 15 || all.Next != nil || h.Get("Link") != "" {
		t.Fatalf("limit above the maximum: %d rows, next %v, Link %q", len(all.Results), all.Next, h.Get("Link"))
	}
	var seen []int
	query := "output=pages&limit=4"
	for range 10 {
		p, h := fetch(query)
		for _, r := range p.Results {
			seen = append(seen, r.Views)
		}
		if p.Next == nil {
			if h.Get("Link") != "" || len(p.Results) > 4 {
				t.Fatalf("last page: Link %q, %d rows", h.Get("Link"), len(p.Results))
			}
			break
		}
		if len(p.Results) != 4 {
			t.Fatalf("a page with more after it has %d rows, want 4", len(p.Results))
		}
		link := h.Get("Link")
		if !strings.HasPrefix(link, "</v1/pipelines/web/results?") || !strings.HasSuffix(link, `>; rel="next"`) || !strings.Contains(link, "after="+url.QueryEscape(*p.Next)) {
			t.Fatalf("Link %q for next %q", link, *p.Next)
		}
		query = strings.TrimSuffix(strings.TrimPrefix(link, "</v1/pipelines/web/results?"), `>; rel="next"`)
	}
	want := []int{0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24}
	if !slices.Equal(seen, want) {
		t.Fatalf("paged views %v, want %v", seen, want)
	}
	// CSV answers carry the Link header too.
	resp, err := http.Get(base + "/v1/pipelines/web/results?format=csv&limit=2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Link"), "after=") {
		t.Errorf("csv page without Link: %q", resp.Header.Get("Link"))
	}
	if serve.MaxResults != 10_000 {
		t.Errorf("MaxResults = %d: docs/api.md says 10000", serve.MaxResults)
	}
}

// TestResultsEventsOutput: an events output's rows have their time, not
// window bounds, an event_id with their group fields, and typed columns,
// in JSON and CSV; a key filter names the group fields alone.
func TestResultsEventsOutput(t *testing.T) {
	plan := &pipeline.Plan{Name: "alerts", Source: pipeline.Source{Topics: []string{"alerts"}}, Outputs: []pipeline.Output{{
		Name: "hot", Kind: pipeline.KindEvents, GroupBy: []string{"zone"}, Topic: "alerts.hot",
		Columns: []pipeline.Column{{Name: "temp_c", Type: pipeline.TypeFloat64}, {Name: "seen", Type: pipeline.TypeTimestamp},
			{Name: "alarm", Type: pipeline.TypeBool}, {Name: "note", Type: pipeline.TypeString}},
	}}}
	base, st, _ := startAPIWith(t, plan)
	at := w0.Add(1500 * time.Millisecond).UnixMilli()
	commitResults(t, st, plan, stream.Result{Output: "hot", Key: []string{"zone-01", "alerts/0/7"}, Start: at, End: at, Final: true,
		Values: []event.Value{event.NumberValue(41.5), event.NumberValue(float64(w0.UnixMilli())), event.BoolValue(true), event.StringValue("=1+1")}})
	code, body := get(t, base+"/v1/pipelines/alerts/results")
	// The rows, exactly; the watermark member that follows them has its
	// own tests.
	want := `{"pipeline":"alerts","results":[{"output":"hot","key":{"zone":"zone-01","event_id":"alerts/0/7"},"time":"2026-05-01T10:00:01.5Z","final":true,` +
		`"temp_c":41.5,"seen":"2026-05-01T10:00:00Z","alarm":true,"note":"=1+1"}],"watermark":`
	if code != 200 || !strings.HasPrefix(body, want) {
		t.Errorf("json: %d %s\nwant %s", code, body, want)
	}
	if code, body := get(t, base+"/v1/pipelines/alerts/results?key=zone-01"); code != 200 || !strings.HasPrefix(body, want) {
		t.Errorf("key=zone-01: %d %s\nwant %s", code, body, want)
	}
	if code, body := get(t, base+"/v1/pipelines/alerts/results?key=zone-0"); code != 200 || strings.Contains(body, `"output":"hot"`) {
		t.Errorf("key=zone-0: %d %s, want no rows", code, body)
	}
	_, body = get(t, base+"/v1/pipelines/alerts/results?format=csv")
	wantCSV := [][]string{{"output", "zone", "event_id", "time", "temp_c", "seen", "alarm", "note"},
		{"hot", "zone-01", "alerts/0/7", "2026-05-01T10:00:01.5Z", "41.5", "2026-05-01T10:00:00Z", "true", "'=1+1"}}
	if recs := readCSV(t, body); !slices.EqualFunc(recs, wantCSV, slices.Equal) {
		t.Errorf("csv %q, want %q", recs, wantCSV)
	}
	_, body = get(t, base+"/v1/pipelines")
	if !strings.Contains(body, `"columns":[{"name":"zone","type":"string"},{"name":"event_id","type":"string"},{"name":"time","type":"timestamp"},{"name":"temp_c","type":"float64"},`+
		`{"name":"seen","type":"timestamp"},{"name":"alarm","type":"bool"},{"name":"note","type":"string"}]`) {
		t.Errorf("pipelines: %s", body)
	}
}
