package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var cityMetrics = []string{"speed_kmh", "vehicle_count", "occupancy", "pm25", "pm10", "no2", "o3",
	"temp_c", "humidity", "wind_ms", "rain_mm"}

func TestBuiltinCity(t *testing.T) {
	plans, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 {
		t.Fatalf("%d built-in pipelines, want 1", len(plans))
	}
	p := plans[0]
	if p.Name != "city" || p.File != "builtin:city.yaml" {
		t.Fatalf("name %q file %q", p.Name, p.File)
	}
	wantSrc := Source{Topics: []string{"city"}, Format: "json", Schema: "city", KeyField: "sensor_id", TimeField: "ts", TimeFormat: "auto"}
	if !reflect.DeepEqual(p.Source, wantSrc) {
		t.Errorf("source %+v, want %+v", p.Source, wantSrc)
	}
	if want := (EventTime{MaxOutOfOrderness: 5 * time.Second, IdleTimeout: 30 * time.Second}); p.Time != want {
		t.Errorf("event time %+v, want %+v", p.Time, want)
	}
	if p.Where != nil || len(p.Derive) != 0 {
		t.Errorf("city has a where or derive")
	}
	wantAggs := []string{"count"}
	for _, m := range cityMetrics {
		wantAggs = append(wantAggs, m+"_count", m+"_avg", m+"_min", m+"_max")
	}
	if len(p.Outputs) != 2 {
		t.Fatalf("%d outputs, want 2", len(p.Outputs))
	}
	for i, want := range []struct{ name, group string }{{"sensor_1m", "sensor_id"}, {"zone_1m", "zone"}} {
		o := p.Outputs[i]
		if o.Name != want.name || !reflect.DeepEqual(o.GroupBy, []string{want.group}) {
			t.Errorf("output %d: %s by %v", i, o.Name, o.GroupBy)
		}
		if o.Window != (Window{Kind: Tumbling, Size: time.Minute}) || o.Partials != 500*time.Millisecond ||
			o.Topic != "city."+want.name || !reflect.DeepEqual(o.Sinks, []string{"sqlite"}) || !o.Live {
			t.Errorf("output %s: %+v", o.Name, o)
		}
		if len(o.Aggregates) != 45 {
			t.Fatalf("output %s: %d aggregates, want 45", o.Name, len(o.Aggregates))
		}
		for j, a := range o.Aggregates {
			if a.Name != wantAggs[j] {
				t.Fatalf("output %s aggregate %d is %s, want %s", o.Name, j, a.Name, wantAggs[j])
			}
			fn, field := "count", ""
			if j > 0 {
				fn, field = []string{"count", "avg", "min", "max"}[(j-1)%4], cityMetrics[(j-1)/4]
			}
			if a.Func == nil || a.Func.Name() != fn || a.Field != field {
				t.Errorf("aggregate %s: func %v field %q", a.Name, a.Func, a.Field)
			}
		}
		if o.Aggregates[0].Func.NeedsField() || !o.Aggregates[1].Func.NeedsField() {
			t.Errorf("count() must not need a field, count(x) must")
		}
	}
	if got := p.Outputs[1].Describe(); got != "zone_1m: tumbling 1m by [zone]" {
		t.Errorf("Describe = %q", got)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yaml", strings.Replace(minimal, "name: t", "name: b", 1))
	write("a.yml", strings.Replace(minimal, "name: t", "name: a", 1))
	write("notes.txt", "not a pipeline")
	plans, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 2 || plans[0].Name != "a" || plans[1].Name != "b" {
		t.Fatalf("plans %v", plans)
	}
	if plans[0].File != filepath.Join(dir, "a.yml") {
		t.Errorf("file %q", plans[0].File)
	}

	write("c.yaml", strings.Replace(minimal, "name: t", "name: a", 1))
	write("d.yaml", "name: d\n")
	_, err = LoadDir(dir)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("want 3 errors (2 in d.yaml, 1 duplicate), got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"d.yaml:1:1: source: the pipeline has no source", "c.yaml: name: pipeline a is already defined in " + filepath.Join(dir, "a.yml")} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q:\n%s", want, msg)
		}
	}
	if _, err := LoadDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("no error for a missing directory")
	}
}

func TestMerge(t *testing.T) {
	builtin, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	mine, err := Parse("mine.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	all, err := Merge(builtin, []*Plan{mine})
	if err != nil || len(all) != 2 || all[0].Name != "city" || all[1] != mine {
		t.Fatalf("Merge = %v, %v", all, err)
	}
	clash, err := Parse("my-city.yaml", []byte(strings.Replace(minimal, "name: t", "name: city", 1)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Merge(builtin, []*Plan{mine, clash})
	want := "my-city.yaml: name: pipeline city is already defined in builtin:city.yaml (hint: a built-in pipeline cannot be replaced; give yours another name)"
	if err == nil || err.Error() != want {
		t.Fatalf("Merge error %v, want %s", err, want)
	}
	other, err := Parse("other.yaml", []byte(strings.Replace(minimal, "name: t", "name: other\n", 1)+"    topic: city.zone_1m\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Merge(builtin, []*Plan{other})
	want = "other.yaml: outputs[0].topic: topic city.zone_1m is also written by pipeline city (builtin:city.yaml) (hint: give the output another topic)"
	if err == nil || err.Error() != want {
		t.Fatalf("Merge error %v, want %s", err, want)
	}
}

func TestWindowString(t *testing.T) {
	for w, want := range map[Window]string{
		{Kind: Tumbling, Size: time.Minute}:                               "tumbling 1m",
		{Kind: Hopping, Size: 5 * time.Minute, Slide: time.Minute}:        "hopping 5m every 1m",
		{Kind: Session, Gap: 90 * time.Minute}:                            "session gap 1h30m",
		{Kind: Tumbling, Size: 2 * time.Hour}:                             "tumbling 2h",
		{Kind: Hopping, Size: time.Second, Slide: 250 * time.Millisecond}: "hopping 1s every 250ms",
	} {
		if got := w.String(); got != want {
			t.Errorf("%+v: %q, want %q", w, got, want)
		}
	}
}
