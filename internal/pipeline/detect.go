package pipeline

import (
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A detect output: its detector, the numeric fields it watches and its
// parameters (the operator is internal/stream's op_detect.go).

var (
	detectKeys = []string{"detector", "fields", "alpha", "threshold", "warm_up"}
	detectors  = []string{"zscore"}
)

const detectExample = "e.g. detect: {detector: zscore, fields: [latency_ms], alpha: 0.1, threshold: 3, warm_up: 10}"

// The defaults of a detect output.
const (
	DefaultAlpha     = 0.1
	DefaultThreshold = 3.0
	DefaultWarmUp    = 10
)

// DetectColumns returns the value columns of the rows a detector writes
// (after the group fields and time): the field, its value, and what the
// detector compared it with.
func DetectColumns(detector string) []Column {
	switch detector {
	case "zscore":
		return []Column{{"value", TypeFloat64}, {"mean", TypeFloat64}, {"stddev", TypeFloat64}, {"z", TypeFloat64}}
	}
	return nil
}

func (p *parser) detect(n *yaml.Node, path string, plan *Plan, o *Output) {
	m, ok := p.fields(n, path, detectExample, detectKeys...)
	if !ok {
		return
	}
	d := &Detect{Alpha: DefaultAlpha, Threshold: DefaultThreshold, WarmUp: DefaultWarmUp}
	o.Detect = d
	if v, ok := m["detector"]; ok {
		if s, ok := p.str(v, join(path, "detector"), "use "+oneOf(detectors)); ok {
			if !contains(detectors, s) {
				p.errorf(v, join(path, "detector"), didYouMean(s, detectors), "unknown detector %q", s)
			}
			d.Detector = s
		}
	} else {
		p.errorf(n, join(path, "detector"), "add detector: zscore", "the detect output names no detector")
	}
	fp := join(path, "fields")
	if v, ok := m["fields"]; ok {
		d.Fields, _ = p.list(v, fp, "e.g. fields: [latency_ms]", p.field)
		if d.Fields != nil && len(d.Fields) == 0 {
			p.errorf(v, fp, "list the numeric fields to watch, e.g. fields: [latency_ms]", "fields is empty")
		}
		list := deref(v)
		for _, f := range d.Fields {
			var at string
			var v *yaml.Node
			for j, c := range list.Content { // d.Fields leaves out what p.list refused
				if c = deref(c); c.Value == f && v == nil {
					at, v = index(fp, j), c
				}
			}
			t, from := knownType(plan, f)
			switch {
			case contains(o.GroupBy, f):
				p.errorf(v, at, "watch a numeric field; group_by says whose series it is", "%s is a group_by field of the output", f)
			case f == plan.Source.TimeField:
				p.errorf(v, at, "watch a measured value, e.g. latency_ms", "%s is the event-time field", f)
			case t != 0 && t != TypeFloat64 && t != TypeInt64:
				p.errorf(v, at, "the detector needs a number: pick a numeric field, or derive one, e.g. derive: {"+f+"_num: 'double("+f+")'}",
					"%s is a %s (%s), not a number", f, typeLabel(t), from)
			}
		}
	} else {
		p.errorf(n, fp, "add the numeric fields to watch, e.g. fields: [latency_ms]", "the detect output has no fields")
	}
	if v, ok := m["alpha"]; ok {
		if x, ok := p.number(v, join(path, "alpha")); ok {
			if !(x > 0 && x <= 1) {
				p.errorf(v, join(path, "alpha"), "alpha weighs the newest point: 0.1 follows slowly, 0.5 quickly; it is in (0, 1]", "alpha %v is out of range", x)
			}
			d.Alpha = x
		}
	}
	if v, ok := m["threshold"]; ok {
		if x, ok := p.number(v, join(path, "threshold")); ok {
			if !(x > 0) {
				p.errorf(v, join(path, "threshold"), "a point is an anomaly when |z| >= threshold; 3 is usual", "threshold must be greater than 0, found %v", x)
			}
			d.Threshold = x
		}
	}
	if v, ok := m["warm_up"]; ok {
		if x, ok := p.number(v, join(path, "warm_up")); ok {
			if x != math.Trunc(x) || x < 0 || x > 1e6 {
				p.errorf(v, join(path, "warm_up"), "how many points of a series to learn from before reporting, e.g. warm_up: 10", "warm_up must be a whole number from 0 to 1000000, found %v", x)
			}
			d.WarmUp = int(x)
		}
	}
	o.Columns = DetectColumns(d.Detector)
}

// number reads a YAML number.
func (p *parser) number(n *yaml.Node, path string) (float64, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		p.errorf(n, path, "write a number, e.g. 0.1", "expected a number, found %s", describe(n))
		return 0, false
	}
	x, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		p.errorf(n, path, "write a number, e.g. 0.1", "%q is not a number", n.Value)
		return 0, false
	}
	return x, true
}
