package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/pulsehq/pulse/internal/health"
	"github.com/pulsehq/pulse/internal/serve"
)

// TestReadyzNamesFailingComponents checks the /readyz body: 503 with each
// component's status and reason while one is not ready, 200 once all are.
func TestReadyzNamesFailingComponents(t *testing.T) {
	reg := &health.Registry{}
	var stalled atomic.Bool
	stalled.Store(true)
	reg.Add("kafka", func(context.Context) error { return nil })
	reg.Add("pipeline city windows", func(context.Context) error {
		if stalled.Load() {
			return errors.New("no commit for 42s while 1,234 records wait")
		}
		return nil
	})
	srv, err := serve.New(serve.Config{Addr: "127.0.0.1:0", Health: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()

	get := func() (int, health.Report) {
		t.Helper()
		resp, err := http.Get("http://" + srv.Addr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rep health.Report
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, rep
	}
	code, rep := get()
	if code != http.StatusServiceUnavailable || rep.Status != "not ready" ||
		rep.Reason != "pipeline city windows: no commit for 42s while 1,234 records wait" {
		t.Fatalf("stalled: %d %+v, want 503 not ready naming the window stage", code, rep)
	}
	if len(rep.Components) != 2 || !rep.Components[0].Ready || rep.Components[1].Ready ||
		rep.Components[1].Reason != "no commit for 42s while 1,234 records wait" {
		t.Fatalf("components %+v, want kafka ready and the window stage not", rep.Components)
	}
	stalled.Store(false)
	if code, rep := get(); code != http.StatusOK || rep.Status != "ready" || rep.Reason != "" || len(rep.Components) != 2 {
		t.Fatalf("recovered: %d %+v, want 200 ready with both components", code, rep)
	}
}
