package stream

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/pulsehq/pulse/internal/pipeline"
)

func TestEventJSON(t *testing.T) {
	dec, r := decodedCity(t)
	for _, tc := range []struct {
		format string
		ts     any
	}{
		{"auto", "2026-01-01T08:00:00.123Z"},
		{"rfc3339", "2026-01-01T08:00:00.123Z"},
		{"epoch_ms", 1767254400123.0},
		{"epoch_s", 1767254400.123},
	} {
		src := pipeline.Source{TimeField: "ts", TimeFormat: tc.format}
		out := appendEventJSON(nil, &src, dec.slots, r)
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: %s is not JSON: %v", tc.format, out, err)
		}
		want := map[string]any{"ts": tc.ts, "sensor_id": "S-17", "zone": "zone-03", "speed_kmh": 42.5, "vehicle_count": 7.0}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", tc.format, got, want)
		}
	}
}
