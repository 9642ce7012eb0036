package pipeline

import (
	"errors"
	"testing"

	"github.com/pulsehq/pulse/pipelines"
)

// FuzzParse checks that no input makes Parse panic and that it returns
// either a plan or a non-empty Errors.
func FuzzParse(f *testing.F) {
	city, err := pipelines.FS.ReadFile("city.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(city)
	f.Add([]byte(minimal))
	f.Add([]byte(everything))
	for _, tc := range invalidCases {
		f.Add([]byte(tc.yaml))
	}
	f.Add([]byte(head + havingOut + "    computed: {r: 'errors / total', d: 'window_end - window_start'}\n    having: has(r) && r > 0.5 && d >= 60\n"))
	f.Add([]byte(head + "where: has(level) && level == 'e' && x * 2 + 1 > 5\n" + havingOut))
	f.Add([]byte("a: &x [*x]\nb: *x\n"))
	f.Add([]byte("- [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		plan, err := Parse("fuzz.yaml", data)
		if err == nil {
			if plan == nil || plan.Name == "" || len(plan.Outputs) == 0 {
				t.Fatalf("no error and plan %+v", plan)
			}
			return
		}
		var errs Errors
		if plan != nil || !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("plan %v, error %T %v", plan, err, err)
		}
		for _, e := range errs {
			if e.Msg == "" || e.File != "fuzz.yaml" {
				t.Fatalf("bad error %+v", e)
			}
		}
	})
}
