package health

import (
	"context"
	"slices"
	"sync"
)

// Check returns nil while a component is ready, else the reason it is not.
type Check func(ctx context.Context) error

// Registry holds the components whose checks make up readiness. The zero
// value is empty and ready to use; it is safe for concurrent use.
type Registry struct {
	mu    sync.Mutex
	names []string
	check map[string]Check
}

// Add registers check under name, replacing a check of the same name. The
// report lists components in the order they were first added.
func (r *Registry) Add(name string, check Check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.check == nil {
		r.check = map[string]Check{}
	}
	if _, ok := r.check[name]; !ok {
		r.names = append(r.names, name)
	}
	r.check[name] = check
}

// Component is one component's line of a report.
type Component struct {
	Name   string `json:"name"`
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

// Report is the body of /readyz.
type Report struct {
	// Status is "ready" or "not ready".
	Status string `json:"status"`
	// Reason names the first component that is not ready and why; empty
	// when ready.
	Reason     string      `json:"reason,omitempty"`
	Components []Component `json:"components"`
}

// Ready reports whether every component is.
func (r Report) Ready() bool { return r.Status == "ready" }

// Report runs every check, concurrently, and collects their answers. A
// registry without components is ready.
func (r *Registry) Report(ctx context.Context) Report {
	r.mu.Lock()
	names := slices.Clone(r.names)
	checks := make([]Check, len(names))
	for i, n := range names {
		checks[i] = r.check[n]
	}
	r.mu.Unlock()
	out := Report{Status: "ready", Components: make([]Component, len(names))}
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			out.Components[i] = Component{Name: names[i], Ready: true}
			if err := c(ctx); err != nil {
				out.Components[i].Ready, out.Components[i].Reason = false, err.Error()
			}
		})
	}
	wg.Wait()
	for _, c := range out.Components {
		if !c.Ready {
			out.Status, out.Reason = "not ready", c.Name+": "+c.Reason
			break
		}
	}
	return out
}
