package serve

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/sink"
	"github.com/pulsehq/pulse/internal/stream"
)

type pipelineInfo struct {
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	File        string       `json:"file"`
	Topics      []string     `json:"topics"`
	Outputs     []outputInfo `json:"outputs"`
}

type outputInfo struct {
	Name       string   `json:"name"`
	GroupBy    []string `json:"group_by"`
	Window     string   `json:"window"`
	Aggregates []string `json:"aggregates"`
	Topic      string   `json:"topic"`
	Live       bool     `json:"live"`
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
			oi := outputInfo{Name: o.Name, GroupBy: o.GroupBy, Window: describeWindow(o.Window), Topic: o.Topic, Live: o.Live}
			if oi.GroupBy == nil {
				oi.GroupBy = []string{}
			}
			for _, a := range o.Aggregates {
				oi.Aggregates = append(oi.Aggregates, a.Name)
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

func parseBound(name, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", name, v)
	}
	return t.UnixMilli(), nil
}

func (s *Server) results(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pipeline(r.PathValue("pipeline"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("unknown pipeline %q: GET /v1/pipelines lists them", r.PathValue("pipeline"))})
		return
	}
	q := r.URL.Query()
	outputs, err := parseOutputs(p, q.Get("output"))
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	from, err := parseBound("from", q.Get("from"))
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	to, err := parseBound("to", q.Get("to"))
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	limit := 0
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit <= 0 {
			badRequest(w, "limit=%q must be a positive whole number", l)
			return
		}
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		badRequest(w, "format=%q is unknown: use json or csv", format)
		return
	}
	var key []string
	if k := q.Get("key"); k != "" {
		key = strings.Split(k, ",")
	}
	rows, err := s.cfg.Store.Query(r.Context(), sink.Query{Pipeline: p.Name, Outputs: outputs, Key: key, From: from, To: to, Limit: limit})
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if format == "csv" {
		writeCSV(w, rows)
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
		buf = appendRow(buf, &rows[i])
		if len(buf) > 32<<10 {
			bw.Write(buf)
			buf = buf[:0]
		}
	}
	buf = append(buf, "]}\n"...)
	bw.Write(buf)
	bw.Flush()
}

// appendRow writes one stored result in the shape of
// stream.AppendResultJSON, splicing the stored aggregates object.
func appendRow(buf []byte, row *sink.Row) []byte {
	buf = stream.AppendResultJSON(buf, &stream.Result{Output: row.Output, GroupBy: row.GroupBy, Key: row.Key, Start: row.Start, End: row.End, Final: true})
	if len(row.Aggs) > 2 {
		buf = buf[:len(buf)-1] // the closing brace
		buf = append(buf, ',')
		buf = append(buf, row.Aggs[1:]...)
	}
	return buf
}

func writeCSV(w http.ResponseWriter, rows []sink.Row) {
	var groupCols, aggCols []string
	seen := map[string]bool{}
	decoded := make([]map[string]string, len(rows))
	var p fastjson.Parser
	for i, row := range rows {
		for _, g := range row.GroupBy {
			if !slices.Contains(groupCols, g) {
				groupCols = append(groupCols, g)
			}
		}
		v, err := p.ParseBytes(row.Aggs)
		if err != nil {
			continue
		}
		m := map[string]string{}
		obj, _ := v.Object()
		obj.Visit(func(k []byte, v *fastjson.Value) {
			m[string(k)] = string(v.MarshalTo(nil))
			if !seen[string(k)] {
				seen[string(k)] = true
				aggCols = append(aggCols, string(k))
			}
		})
		decoded[i] = m
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	cw := csv.NewWriter(w)
	header := append([]string{"output"}, groupCols...)
	header = append(header, "window_start", "window_end")
	header = append(header, aggCols...)
	cw.Write(header)
	rec := make([]string, len(header))
	for i, row := range rows {
		rec = rec[:0]
		rec = append(rec, row.Output)
		for _, g := range groupCols {
			val := ""
			if j := slices.Index(row.GroupBy, g); j >= 0 && j < len(row.Key) {
				val = row.Key[j]
			}
			rec = append(rec, val)
		}
		rec = append(rec, time.UnixMilli(row.Start).UTC().Format(time.RFC3339), time.UnixMilli(row.End).UTC().Format(time.RFC3339))
		for _, a := range aggCols {
			rec = append(rec, decoded[i][a])
		}
		cw.Write(rec)
	}
	cw.Flush()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
