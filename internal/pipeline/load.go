package pipeline

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pulsehq/pulse/pipelines"
)

// LoadDir parses every *.yaml and *.yml file of dir, in name order. The
// error lists every problem of every file, and duplicate pipeline names.
func LoadDir(dir string) ([]*Plan, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pipelines: %w", err)
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && isYAML(e.Name()) {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	return load(files, os.ReadFile)
}

// Builtin returns the pipelines that ship with Pulse (the root pipelines
// directory, embedded), named "builtin:<file>".
func Builtin() ([]*Plan, error) {
	names, err := fs.Glob(pipelines.FS, "*.y*ml")
	if err != nil {
		return nil, err
	}
	var files []string
	for _, n := range names {
		if isYAML(n) {
			files = append(files, "builtin:"+n)
		}
	}
	return load(files, func(name string) ([]byte, error) {
		return pipelines.FS.ReadFile(strings.TrimPrefix(name, "builtin:"))
	})
}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

func load(files []string, read func(string) ([]byte, error)) ([]*Plan, error) {
	sort.Strings(files)
	var plans []*Plan
	var errs Errors
	for _, f := range files {
		data, err := read(f)
		if err != nil {
			errs = append(errs, Error{File: f, Msg: err.Error()})
			continue
		}
		plan, err := Parse(f, data)
		if err != nil {
			errs = append(errs, err.(Errors)...)
			continue
		}
		plans = append(plans, plan)
	}
	if _, err := Merge(nil, plans); err != nil {
		errs = append(errs, err.(Errors)...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return plans, nil
}

// Merge returns the built-in pipelines followed by the user's, and an error
// naming both files when two pipelines have the same name or write the same
// output topic.
func Merge(builtin, user []*Plan) ([]*Plan, error) {
	all := append(append([]*Plan{}, builtin...), user...)
	seen := map[string]*Plan{}
	topics := map[string]*Plan{}
	var errs Errors
	for _, p := range all {
		if prev, dup := seen[p.Name]; dup {
			hint := "rename one of them"
			if strings.HasPrefix(prev.File, "builtin:") {
				hint = "a built-in pipeline cannot be replaced; give yours another name"
			}
			errs = append(errs, Error{File: p.File, Path: "name",
				Msg: fmt.Sprintf("pipeline %s is already defined in %s", p.Name, prev.File), Hint: hint})
			continue
		}
		seen[p.Name] = p
		for i, o := range p.Outputs {
			if prev, dup := topics[o.Topic]; dup {
				errs = append(errs, Error{File: p.File, Path: index("outputs", i) + ".topic",
					Msg:  fmt.Sprintf("topic %s is also written by pipeline %s (%s)", o.Topic, prev.Name, prev.File),
					Hint: "give the output another topic"})
			}
			topics[o.Topic] = p
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return all, nil
}

// String names a window kind as in pipeline files.
func (k WindowKind) String() string {
	switch k {
	case Tumbling:
		return "tumbling"
	case Hopping:
		return "hopping"
	case Session:
		return "session"
	}
	return fmt.Sprintf("WindowKind(%d)", k)
}

// String describes w: "tumbling 1m", "hopping 5m every 1m", "session gap 30m".
func (w Window) String() string {
	switch w.Kind {
	case Tumbling:
		return "tumbling " + FormatDuration(w.Size)
	case Hopping:
		return "hopping " + FormatDuration(w.Size) + " every " + FormatDuration(w.Slide)
	case Session:
		return "session gap " + FormatDuration(w.Gap)
	}
	return w.Kind.String()
}

// FormatDuration writes d as in pipeline files: 1m rather than 1m0s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Describe summarizes o: "zone_1m: tumbling 1m by [zone]".
func (o Output) Describe() string {
	s := o.Name + ": " + o.Window.String()
	if o.Kind == KindEvents {
		s = o.Name + ": events"
	} else if o.Kind == KindDetect && o.Detect != nil {
		s = o.Name + ": detect " + o.Detect.Detector
	} else if o.Kind == KindJoin && o.Join != nil {
		s = o.Name + ": join " + o.Join.Table + " on " + o.Join.Key
	}
	if len(o.GroupBy) > 0 {
		s += " by [" + strings.Join(o.GroupBy, ", ") + "]"
	}
	return s
}

// BuiltinNamed returns the built-in pipeline called name.
func BuiltinNamed(name string) (*Plan, error) {
	plans, err := Builtin()
	if err != nil {
		return nil, err
	}
	for _, p := range plans {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no built-in pipeline %q", name)
}
