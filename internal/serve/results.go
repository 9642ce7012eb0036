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

	"github.com/pulsehq/pulse/internal/sink"
	"github.com/pulsehq/pulse/internal/stream"
)

type pipelineInfo struct {
	Name    string       `json:"name"`
	Topic   string       `json:"topic"`
	Outputs []outputInfo `json:"outputs"`
}

type outputInfo struct {
	Name    string `json:"name"`
	GroupBy string `json:"group_by"`
	Window  string `json:"window"`
}

func (s *Server) listPipelines(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Pipelines []pipelineInfo `json:"pipelines"`
	}{Pipelines: []pipelineInfo{}}
	for _, p := range s.cfg.Pipelines {
		pi := pipelineInfo{Name: p.Name, Topic: p.Topic}
		for _, o := range p.Outputs {
			pi.Outputs = append(pi.Outputs, outputInfo{
				Name: o.Name, GroupBy: o.GroupBy,
				Window: "tumbling " + (time.Duration(o.Window.Size) * time.Millisecond).String(),
			})
		}
		out.Pipelines = append(out.Pipelines, pi)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) pipeline(name string) (stream.Pipeline, bool) {
	for _, p := range s.cfg.Pipelines {
		if p.Name == name {
			return p, true
		}
	}
	return stream.Pipeline{}, false
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// parseOutputs checks the comma separated output names against p.
func parseOutputs(p stream.Pipeline, s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	names := strings.Split(s, ",")
	for _, n := range names {
		if !slices.Contains(p.OutputNames(), n) {
			return nil, fmt.Errorf("pipeline %s has no output %q: its outputs are %s", p.Name, n, strings.Join(p.OutputNames(), ", "))
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
	rows, err := s.cfg.Store.Query(r.Context(), sink.Query{Pipeline: p.Name, Outputs: outputs, Key: q.Get("key"), From: from, To: to, Limit: limit})
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
	buf = strconv.AppendQuote(buf, p.Name)
	buf = append(buf, `,"results":[`...)
	for i, row := range rows {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendRow(buf, row.Output, row.GroupBy, row.Key, row.Start, row.End, true, row.Aggs)
		if len(buf) > 32<<10 {
			bw.Write(buf)
			buf = buf[:0]
		}
	}
	buf = append(buf, "]}\n"...)
	bw.Write(buf)
	bw.Flush()
}

// appendRow writes one result as a JSON object: output, key, window bounds,
// final, then the named aggregates spliced from aggs.
func appendRow(buf []byte, output, groupBy, key string, start, end int64, final bool, aggs []byte) []byte {
	buf = append(buf, `{"output":`...)
	buf = strconv.AppendQuote(buf, output)
	buf = append(buf, `,"key":{`...)
	buf = strconv.AppendQuote(buf, groupBy)
	buf = append(buf, ':')
	buf = strconv.AppendQuote(buf, key)
	buf = append(buf, `},"window_start":"`...)
	buf = time.UnixMilli(start).UTC().AppendFormat(buf, time.RFC3339)
	buf = append(buf, `","window_end":"`...)
	buf = time.UnixMilli(end).UTC().AppendFormat(buf, time.RFC3339)
	buf = append(buf, `","final":`...)
	buf = strconv.AppendBool(buf, final)
	if len(aggs) > 2 {
		buf = append(buf, ',')
		buf = append(buf, aggs[1:]...)
	} else {
		buf = append(buf, '}')
	}
	return buf
}

func writeCSV(w http.ResponseWriter, rows []sink.Row) {
	var groupCols, aggCols []string
	seen := map[string]bool{}
	decoded := make([]map[string]string, len(rows))
	var p fastjson.Parser
	for i, row := range rows {
		if !slices.Contains(groupCols, row.GroupBy) {
			groupCols = append(groupCols, row.GroupBy)
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
			if g == row.GroupBy {
				rec = append(rec, row.Key)
			} else {
				rec = append(rec, "")
			}
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
