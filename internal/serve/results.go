package serve

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/sink"
)

type pipelineInfo struct {
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	File        string       `json:"file"`
	Topics      []string     `json:"topics"`
	Outputs     []outputInfo `json:"outputs"`
}

type outputInfo struct {
	Name       string       `json:"name"`
	GroupBy    []string     `json:"group_by"`
	Window     string       `json:"window"`
	Aggregates []string     `json:"aggregates"`
	Columns    []columnInfo `json:"columns"`
	Topic      string       `json:"topic"`
	Live       bool         `json:"live"`
}

// columnInfo is one column of an output's results and its type.
type columnInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func describeWindow(w pipeline.Window) string {
	switch w.Kind {
	case pipeline.Hopping:
		return "hopping " + w.Size.String() + " every " + w.Slide.String()
	case pipeline.Session:
		return "session gap " + w.Gap.String()
	}
	return "tumbling " + w.Size.String()
}

func (s *Server) listPipelines(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Pipelines []pipelineInfo `json:"pipelines"`
	}{Pipelines: []pipelineInfo{}}
	for _, p := range s.cfg.Pipelines {
		pi := pipelineInfo{Name: p.Name, Description: p.Description, File: p.File, Topics: p.Source.Topics}
		for _, o := range p.Outputs {
			oi := outputInfo{Name: o.Name, GroupBy: o.GroupBy, Window: describeWindow(o.Window), Topic: o.Topic, Live: o.Live,
				Aggregates: []string{}}
			if oi.GroupBy == nil {
				oi.GroupBy = []string{}
			}
			for _, a := range o.Aggregates {
				oi.Aggregates = append(oi.Aggregates, a.Name)
			}
			for _, c := range s.schemas[p.Name+"/"+o.Name].Columns {
				oi.Columns = append(oi.Columns, columnInfo{Name: c.Name, Type: c.Type.String()})
			}
			pi.Outputs = append(pi.Outputs, oi)
		}
		out.Pipelines = append(out.Pipelines, pi)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) pipeline(name string) (*pipeline.Plan, bool) {
	for _, p := range s.cfg.Pipelines {
		if p.Name == name {
			return p, true
		}
	}
	return nil, false
}

func outputNames(p *pipeline.Plan) []string {
	names := make([]string, len(p.Outputs))
	for i, o := range p.Outputs {
		names[i] = o.Name
	}
	return names
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// parseOutputs checks the comma separated output names against p.
func parseOutputs(p *pipeline.Plan, s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	names := strings.Split(s, ",")
	for _, n := range names {
		if !slices.Contains(outputNames(p), n) {
			return nil, fmt.Errorf("pipeline %s has no output %q: its outputs are %s", p.Name, n, strings.Join(outputNames(p), ", "))
		}
	}
	return names, nil
}

// parseBound reads a time bound of a query, for the results and the
// history API alike: an RFC 3339 time or Unix milliseconds; "" is 0.
func parseBound(name, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is neither an RFC 3339 time such as 2026-01-02T15:04:05Z nor Unix milliseconds", name, v)
	}
	return t.UnixMilli(), nil
}

// MaxResults is the most rows one results request returns, and what it
// returns when no limit is given: a longer answer is cut there, and its
// next cursor asks for the rest.
const MaxResults = 10_000

// resultsQuery reads the query parameters of GET .../results.
func resultsQuery(p *pipeline.Plan, sch schemas, q url.Values) (sink.Query, string, error) {
	outputs, err := parseOutputs(p, q.Get("output"))
	if err != nil {
		return sink.Query{}, "", err
	}
	sq := sink.Query{Pipeline: p.Name, Outputs: sch.of(p, outputs), Limit: MaxResults}
	if sq.From, err = parseBound("from", q.Get("from")); err != nil {
		return sink.Query{}, "", err
	}
	if sq.To, err = parseBound("to", q.Get("to")); err != nil {
		return sink.Query{}, "", err
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return sink.Query{}, "", fmt.Errorf("limit=%q must be a positive whole number (at most %d rows are returned at once)", l, MaxResults)
		}
		sq.Limit = min(n, MaxResults)
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return sink.Query{}, "", fmt.Errorf("format=%q is unknown: use json or csv", format)
	}
	if a := q.Get("after"); a != "" {
		c, err := sink.ParseCursor(a)
		if err != nil {
			return sink.Query{}, "", fmt.Errorf("after=%q is %v", a, err)
		}
		sq.After = &c
	}
	if key, ok := q["key"]; ok {
		if err := checkKey(p, outputs, key); err != nil {
			return sink.Query{}, "", err
		}
		sq.Key = key
	}
	return sq, format, nil
}

// checkKey accepts key values (one key= parameter per group field, in
// group_by order, each taken whole) when an output queried groups by as
// many fields.
func checkKey(p *pipeline.Plan, outputs []string, key []string) error {
	var shapes []string
	for _, o := range p.Outputs {
		if len(outputs) > 0 && !slices.Contains(outputs, o.Name) {
			continue
		}
		if len(o.GroupBy) == len(key) {
			return nil
		}
		fields := "no fields"
		if len(o.GroupBy) > 0 {
			fields = "key=<" + strings.Join(o.GroupBy, ">&key=<") + ">"
		}
		shapes = append(shapes, o.Name+": "+fields)
	}
	return fmt.Errorf("%d key values match no output queried: give one key= per group field, in group_by order, each value whole (commas included): %s",
		len(key), strings.Join(shapes, "; "))
}

func (s *Server) results(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pipeline(r.PathValue("pipeline"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("unknown pipeline %q: GET /v1/pipelines lists them", r.PathValue("pipeline"))})
		return
	}
	q, format, err := resultsQuery(p, s.schemas, r.URL.Query())
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	limit := q.Limit
	q.Limit++ // one more row says whether there are more
	rows, err := s.cfg.Store.Query(r.Context(), q)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = rows[limit-1].Cursor().String()
		u := *r.URL
		v := u.Query()
		v.Set("after", next)
		u.RawQuery = v.Encode()
		w.Header().Set("Link", "<"+u.RequestURI()+`>; rel="next"`)
	}
	if format == "csv" {
		writeCSV(w, q.Outputs, rows)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriter(w)
	buf := []byte(`{"pipeline":`)
	buf = event.AppendJSONString(buf, p.Name)
	buf = append(buf, `,"results":[`...)
	for i := range rows {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = rows[i].Schema.AppendRow(buf, &rows[i].Result)
		if len(buf) > 32<<10 {
			bw.Write(buf)
			buf = buf[:0]
		}
	}
	buf = append(buf, ']')
	if next != "" {
		buf = append(buf, `,"next":`...)
		buf = event.AppendJSONString(buf, next)
	}
	buf = s.appendWatermark(buf, p)
	buf = append(buf, "}\n"...)
	bw.Write(buf)
	bw.Flush()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // error messages quote <field> placeholders
	_ = enc.Encode(v)
}
