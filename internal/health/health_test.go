package health

import (
	"context"
	"errors"
	"testing"
)

func TestReport(t *testing.T) {
	var r Registry
	if rep := r.Report(context.Background()); !rep.Ready() || len(rep.Components) != 0 {
		t.Fatalf("empty registry: %+v, want ready without components", rep)
	}
	r.Add("kafka", func(context.Context) error { return nil })
	r.Add("disk", func(context.Context) error { return errors.New("free space 12 MiB below reserve 256 MiB on /data") })
	r.Add("pipeline city windows", func(context.Context) error { return errors.New("no commit for 42s while 1,234 records wait") })
	rep := r.Report(context.Background())
	if rep.Ready() || rep.Status != "not ready" {
		t.Fatalf("status %q, want not ready", rep.Status)
	}
	if want := "disk: free space 12 MiB below reserve 256 MiB on /data"; rep.Reason != want {
		t.Errorf("reason %q, want %q", rep.Reason, want)
	}
	want := []Component{
		{Name: "kafka", Ready: true},
		{Name: "disk", Reason: "free space 12 MiB below reserve 256 MiB on /data"},
		{Name: "pipeline city windows", Reason: "no commit for 42s while 1,234 records wait"},
	}
	if len(rep.Components) != len(want) {
		t.Fatalf("components %+v, want %+v", rep.Components, want)
	}
	for i := range want {
		if rep.Components[i] != want[i] {
			t.Errorf("component %d: %+v, want %+v", i, rep.Components[i], want[i])
		}
	}

	r.Add("disk", func(context.Context) error { return nil }) // replaced, keeps its place
	r.Add("pipeline city windows", func(context.Context) error { return nil })
	rep = r.Report(context.Background())
	if !rep.Ready() || rep.Reason != "" || len(rep.Components) != 3 || rep.Components[1].Name != "disk" {
		t.Fatalf("after replacing the checks: %+v, want ready with kafka, disk, pipeline city windows", rep)
	}
}
