package serve

import (
	"testing"
	"time"
)

// TestTimeText: times as RFC 3339 with milliseconds in UTC, as
// time.Format writes them, across seconds, before 1970 and at its start.
func TestTimeText(t *testing.T) {
	var tc timeText
	for _, ms := range []int64{1772366400250, 1772366400999, 1772366401000, 1772366400250, 0, -1, -1000, -1001, 999, 253402300799999} {
		want := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
		if got := string(tc.append(nil, ms)); got != want {
			t.Errorf("%d ms: %s, want %s", ms, got, want)
		}
	}
}
