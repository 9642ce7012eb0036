package stream

import (
	"fmt"
	"slices"
	"testing"
)

// TestAdvanceInSlices: firing a minute's finals a few at a time (as the
// window stage does, so that a million keys' finals are never in memory
// at once) gives the results of one call, in the same order, and the
// same changelog; every call before the last returns at least max.
func TestAdvanceInSlices(t *testing.T) {
	var events []string
	for i := range 250 {
		// Two outputs; 1,000 keys of pair, 50 of one.
		events = append(events, fmt.Sprintf(`{"id":"s%d","ts":"2026-03-01T12:00:%02dZ","a":"a%d","b":"b%d"}`, i, i%60, i%50, i%20))
	}
	late := `{"id":"w","ts":"2026-03-01T12:05:00Z","a":"later","b":"x"}`
	whole := keyEngine(t, append(events, late)...)
	want := whole.Advance(0, nil, 0)
	wantLog := appendChanges(whole, nil)
	if len(want) < 100 {
		t.Fatalf("only %d results: the test needs many due at once", len(want))
	}
	for _, max := range []int{1, 7, 64} {
		e := keyEngine(t, append(events, late)...)
		var got []Result
		calls := 0
		for ; ; calls++ {
			n := len(got)
			got = e.Advance(0, got, max)
			if len(got)-n > max {
				// One window per group here: a call stops at max.
				t.Fatalf("max %d: a call returned %d results", max, len(got)-n)
			}
			if len(got)-n < max {
				break
			}
			if calls > len(want) {
				t.Fatalf("max %d: Advance keeps returning %d results", max, len(got)-n)
			}
		}
		if least := len(want) / max; calls < least {
			t.Errorf("max %d: %d calls for %d results, want at least %d", max, calls+1, len(want), least)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("max %d: %d results, want the %d of one call", max, len(got), len(want))
		}
		if gotLog := appendChanges(e, nil); !slices.EqualFunc(gotLog, wantLog, func(a, b Change) bool {
			return string(a.Key) == string(b.Key) && string(a.Value) == string(b.Value)
		}) {
			t.Errorf("max %d: the changelog differs from one call's (%d records, want %d)", max, len(gotLog), len(wantLog))
		}
	}
}
