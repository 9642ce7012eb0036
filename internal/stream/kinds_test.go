package stream

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRecordKinds replays two semantics cases and checks the kind of
// every result, worked out by hand from the rules: a window's first
// final (also a late window's, opened already final) is an insert, a
// final emitted again because a late event changed the window is an
// update, a withdrawn session is a delete, and a session fired again
// after its delete is an insert.
func TestRecordKinds(t *testing.T) {
	tests := []struct {
		file string
		want [][]string // per advance, "kind id"
	}{
		{"allowed_lateness.json", [][]string{
			{"insert tum/a@2026-03-01T12:00:00.000Z"},
			{"update tum/a@2026-03-01T12:00:00.000Z"},
			{"insert tum/b@2026-03-01T12:00:00.000Z"},
			{"update tum/a@2026-03-01T12:00:00.000Z"},
			nil,
			{"insert tum/a@2026-03-01T12:01:00.000Z"},
		}},
		{"session_merge_lateness.json", [][]string{
			{"insert ses/u@2026-03-01T12:00:00.000Z"},
			{"delete ses/u@2026-03-01T12:00:00.000Z"},
			{"insert ses/u@2026-03-01T12:00:00.000Z"},
			{"insert ses/u@2026-03-01T12:00:28.000Z"},
			{"delete ses/u@2026-03-01T12:00:28.000Z", "update ses/u@2026-03-01T12:00:00.000Z"},
			{"insert ses/u@2026-03-01T12:00:40.000Z"},
			nil,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "semantics", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var c semCase
			if err := json.Unmarshal(data, &c); err != nil {
				t.Fatal(err)
			}
			plan := testPlan(t, c.Pipeline)
			dec := NewDecoder(plan)
			e := NewEngine(plan, dec)
			var got [][]string
			run := &stepRun{op: e, dec: dec, advanced: func(_ int, _ string, out []Result) {
				var kinds []string
				for _, r := range out {
					kinds = append(kinds, r.Kind.String()+" "+resultID(&r))
				}
				got = append(got, kinds)
			}}
			run.run(t, len(c.Steps), func(i int) *caseStep { return &c.Steps[i].caseStep })
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("kinds per advance\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
