package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxErrors bounds the errors reported for one file.
const maxErrors = 100

// The event-time defaults.
const (
	DefaultMaxOutOfOrderness = 5 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
)

var (
	topKeys       = []string{"name", "description", "source", "event_time", "where", "derive", "outputs"}
	sourceKeys    = []string{"topic", "topics", "pipeline", "output", "format", "schema", "key", "time"}
	schemas       = []string{"city"}
	timeKeys      = []string{"field", "format"}
	eventTimeKeys = []string{"max_out_of_orderness", "idle_timeout", "allowed_lateness"}
	timeFormats   = []string{"auto", "rfc3339", "epoch_ms", "epoch_s"}
	formats       = []string{"json"}
)

// Parse parses, validates and compiles one pipeline file; file names it in
// errors. On failure the error is an Errors listing every problem found.
func Parse(file string, data []byte) (plan *Plan, err error) {
	p := &parser{file: file}
	defer func() {
		if r := recover(); r != nil { // the YAML parser must not take Pulse down
			plan, err = nil, Errors{{File: file, Msg: fmt.Sprintf("cannot parse the file: %v", r)}}
		}
	}()
	root, ok := p.document(data)
	if ok {
		plan = p.plan(root)
	}
	if len(p.errs) > 0 {
		sortErrors(p.errs)
		if n := len(p.errs); n > maxErrors {
			p.errs = append(p.errs[:maxErrors], Error{File: file, Msg: fmt.Sprintf("and %d more problems", n-maxErrors)})
		}
		return nil, p.errs
	}
	plan.File = file
	plan.positions = p.pos
	return plan, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document decodes the single YAML document of data.
func (p *parser) document(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(nil, "", "a pipeline starts with name: and source:; see docs/pipelines.md", "the file is empty")
			return nil, false
		}
		p.yamlError(err)
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			p.yamlError(err)
		} else {
			p.errorf(&extra, "", "put each pipeline in its own file", "a file holds one pipeline; this is a second YAML document")
		}
		return nil, false
	}
	if len(doc.Content) == 0 {
		p.errorf(nil, "", "a pipeline starts with name: and source:; see docs/pipelines.md", "the file is empty")
		return nil, false
	}
	return doc.Content[0], true
}

func (p *parser) yamlError(err error) {
	msg := err.Error()
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	e := Error{File: p.file, Line: line, Msg: "invalid YAML: " + msg, Hint: "check the indentation and quote expressions that contain ': ' or start with a special character"}
	if line > 0 {
		e.Col = 1
	}
	p.errs = append(p.errs, e)
}

func (p *parser) plan(root *yaml.Node) *Plan {
	m, ok := p.fields(root, "", "a pipeline is a mapping with name, source and outputs", topKeys...)
	if !ok {
		return nil
	}
	plan := &Plan{}
	if n, ok := m["name"]; ok {
		plan.Name, _ = p.name(n, "name", "pipeline")
	} else {
		p.errorf(root, "name", "add e.g. name: city", "the pipeline has no name")
	}
	if n, ok := m["description"]; ok && !isNull(n) {
		plan.Description, _ = p.str(n, "description", "a sentence saying what the pipeline computes")
	}
	if n, ok := m["source"]; ok {
		plan.Source = p.source(n)
	} else {
		p.errorf(root, "source", "add e.g. source: {topic: city, key: sensor_id, time: {field: ts}}", "the pipeline has no source")
	}
	plan.Time = EventTime{MaxOutOfOrderness: DefaultMaxOutOfOrderness, IdleTimeout: DefaultIdleTimeout}
	if n, ok := m["event_time"]; ok {
		p.eventTime(n, &plan.Time)
	}
	if n, ok := m["derive"]; ok {
		plan.Derive = p.derive(n)
	}
	if n, ok := m["where"]; ok {
		plan.Where = p.where(n)
	}
	if n, ok := m["outputs"]; ok {
		plan.Outputs = p.outputs(n, plan)
	} else {
		p.errorf(root, "outputs", "add a list of outputs, e.g. outputs: [{name: zone_1m, group_by: [zone], window: {tumbling: 1m}, aggregates: {count: count()}}]", "the pipeline has no outputs")
	}
	return plan
}

func (p *parser) source(n *yaml.Node) Source {
	src := Source{Format: "json", TimeFormat: "auto"}
	m, ok := p.fields(n, "source", "e.g. source: {topic: city, key: sensor_id, time: {field: ts}}", sourceKeys...)
	if !ok {
		return src
	}
	topic, hasTopic := m["topic"]
	topics, hasTopics := m["topics"]
	if up, ok := m["pipeline"]; ok {
		return p.linkedSource(n, m, up, hasTopic || hasTopics)
	}
	if out, ok := m["output"]; ok {
		p.errorf(out, "source.output", "add e.g. pipeline: logs next to it, or read a topic", "source.output needs source.pipeline")
	}
	switch {
	case hasTopic && hasTopics:
		p.errorf(keyNode(n, "topics"), "source.topics", "keep topic: for one topic or topics: for several", "source has both topic and topics")
	case hasTopic:
		if t, ok := p.topic(topic, "source.topic"); ok {
			src.Topics = []string{t}
		}
	case hasTopics:
		src.Topics, _ = p.list(topics, "source.topics", "e.g. topics: [city, city_extra]", p.topic)
		if src.Topics != nil && len(src.Topics) == 0 {
			p.errorf(topics, "source.topics", "list at least one topic", "source.topics is empty")
		}
	default:
		p.errorf(n, "source.topic", "add e.g. topic: city", "source has no topic")
	}
	if f, ok := m["format"]; ok {
		if s, ok := p.str(f, "source.format", "format: json"); ok {
			if !contains(formats, s) {
				p.errorf(f, "source.format", "json is the only format for now", "unknown format %q", s)
			}
			src.Format = s
		}
	}
	if f, ok := m["schema"]; ok {
		if s, ok := p.str(f, "source.schema", "schema: city"); ok {
			if !contains(schemas, s) {
				p.errorf(f, "source.schema", didYouMean(s, schemas), "unknown schema %q", s)
			}
			src.Schema = s
		}
	}
	if k, ok := m["key"]; ok {
		src.KeyField, _ = p.field(k, "source.key")
	} else {
		p.errorf(n, "source.key", "add the field input records are keyed by, e.g. key: sensor_id", "source has no key")
	}
	if t, ok := m["time"]; ok {
		p.sourceTime(t, &src)
	} else {
		p.errorf(n, "source.time", "add e.g. time: {field: ts}", "source has no time")
	}
	return src
}

// linkedSource parses a source that reads another pipeline's output:
// pipeline and output, nothing else (Link fills in the rest).
func (p *parser) linkedSource(n *yaml.Node, m map[string]*yaml.Node, up *yaml.Node, topicToo bool) Source {
	var src Source
	src.Pipeline, _ = p.name(up, "source.pipeline", "pipeline")
	if out, ok := m["output"]; ok {
		src.Output, _ = p.name(out, "source.output", "output")
	} else {
		p.errorf(n, "source.output", "add the output to read, e.g. output: errors_1m", "source.pipeline has no output")
	}
	if topicToo {
		p.errorf(n, "source.topic", "read either a topic or a pipeline's output", "source has both a topic and a pipeline")
	}
	for _, k := range []string{"format", "schema", "key", "time"} {
		if v, ok := m[k]; ok {
			p.errorf(v, "source."+k, "remove it: a pipeline's output brings its own (flat JSON, keyed by its group fields, timed by window_start or time)",
				"source.%s does not apply to a pipeline's output", k)
		}
	}
	return src
}

func (p *parser) sourceTime(n *yaml.Node, src *Source) {
	m, ok := p.fields(n, "source.time", "e.g. time: {field: ts, format: auto}", timeKeys...)
	if !ok {
		return
	}
	if f, ok := m["field"]; ok {
		src.TimeField, _ = p.field(f, "source.time.field")
	} else {
		p.errorf(n, "source.time.field", "add the field holding the event time, e.g. field: ts", "source.time has no field")
	}
	if f, ok := m["format"]; ok {
		if s, ok := p.str(f, "source.time.format", "use "+oneOf(timeFormats)); ok {
			if !contains(timeFormats, s) {
				p.errorf(f, "source.time.format", didYouMean(s, timeFormats), "unknown time format %q", s)
			}
			src.TimeFormat = s
		}
	}
}

func (p *parser) eventTime(n *yaml.Node, et *EventTime) {
	m, ok := p.fields(n, "event_time", "e.g. event_time: {max_out_of_orderness: 5s}", eventTimeKeys...)
	if !ok {
		return
	}
	if v, ok := m["max_out_of_orderness"]; ok {
		if d, ok := p.duration(v, "event_time.max_out_of_orderness", false); ok {
			et.MaxOutOfOrderness = d
		}
	}
	if v, ok := m["idle_timeout"]; ok {
		if d, ok := p.duration(v, "event_time.idle_timeout", true); ok {
			et.IdleTimeout = d
		}
	}
	if v, ok := m["allowed_lateness"]; ok {
		if d, ok := p.duration(v, "event_time.allowed_lateness", false); ok {
			et.AllowedLateness = d
		}
	}
}
