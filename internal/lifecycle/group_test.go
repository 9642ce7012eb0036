package lifecycle

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, s)
}

// comp returns a component that records its stop, after checking that
// every component after it stopped first.
func (r *recorder) comp(name string, fail error) Component {
	return Component{Name: name, Run: func(ctx context.Context) error {
		if fail != nil {
			return fail
		}
		<-ctx.Done()
		r.add(name)
		return nil
	}}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestStopsInReverseOrder(t *testing.T) {
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Run(ctx, quiet, time.Minute, r.comp("broker", nil), r.comp("pipeline", nil), r.comp("http", nil))
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := r.log; len(got) != 3 || got[0] != "http" || got[1] != "pipeline" || got[2] != "broker" {
		t.Fatalf("stop order %v, want [http pipeline broker]", got)
	}
}

func TestFailingComponentStopsTheRest(t *testing.T) {
	r := &recorder{}
	boom := errors.New("boom")
	err := Run(context.Background(), quiet, time.Minute, r.comp("broker", nil), r.comp("pipeline", boom), r.comp("http", nil))
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	if got := r.log; len(got) != 2 || got[0] != "http" || got[1] != "broker" {
		t.Fatalf("stop order %v, want [http broker]", got)
	}
}

func TestDrainTimeout(t *testing.T) {
	stuck := Component{Name: "stuck", Run: func(context.Context) error { select {} }}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Run(ctx, quiet, 50*time.Millisecond, stuck)
	if err == nil {
		t.Fatal("a component that never stops must be reported")
	}
}
