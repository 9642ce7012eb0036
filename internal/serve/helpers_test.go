package serve_test

import (
	"context"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/serve"
	"github.com/pulsehq/pulse/internal/sink"
	"github.com/pulsehq/pulse/internal/stream"
)

// cityPlan returns the built-in city pipeline.
func cityPlan(t testing.TB) *pipeline.Plan {
	t.Helper()
	p, err := pipeline.BuiltinNamed("city")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// zoneWindow returns a zone_1m result of the city pipeline whose named
// aggregates have the given values; the others are absent.
func zoneWindow(t testing.TB, zone string, start time.Time, final bool, fields map[string]float64) stream.Result {
	t.Helper()
	plan := cityPlan(t)
	var out *pipeline.Output
	for i := range plan.Outputs {
		if plan.Outputs[i].Name == "zone_1m" {
			out = &plan.Outputs[i]
		}
	}
	r := stream.Result{Output: "zone_1m", GroupBy: []string{"zone"}, Key: []string{zone},
		Start: start.UnixMilli(), End: start.Add(time.Minute).UnixMilli(), Final: final}
	for _, a := range out.Aggregates {
		r.Names = append(r.Names, a.Name)
		if v, ok := fields[a.Name]; ok {
			r.Values = append(r.Values, event.NumberValue(v))
		} else {
			r.Values = append(r.Values, event.Value{})
		}
	}
	return r
}

// schemaOf returns the schema of plan's output.
func schemaOf(t testing.TB, plan *pipeline.Plan, output string) *stream.Schema {
	t.Helper()
	for i := range plan.Outputs {
		if plan.Outputs[i].Name == output {
			return stream.SchemaOf(&plan.Outputs[i])
		}
	}
	t.Fatalf("pipeline %s has no output %s", plan.Name, output)
	return nil
}

// commitResults stores final results of plan's outputs, as the feed does.
func commitResults(t testing.TB, st sink.Appendable, plan *pipeline.Plan, results ...stream.Result) {
	t.Helper()
	var ws []sink.Write
	for _, r := range results {
		ws = append(ws, sink.WritesOf(plan.Name, schemaOf(t, plan, r.Output), r)...)
	}
	if err := sink.Commit(context.Background(), st, ws, nil); err != nil {
		t.Fatal(err)
	}
}

// serveConfig starts a server of cfg on a free port until the test ends.
func serveConfig(tb testing.TB, cfg serve.Config) *serve.Server {
	tb.Helper()
	srv, err := serve.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	return srv
}
